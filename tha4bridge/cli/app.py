"""The Typer application every command module registers on."""
from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Animate a Talking Head Anime 4 character in real time for games and streaming tools.")


@app.callback()
def _main() -> None:
    """Animate a Talking Head Anime 4 character in real time for games and streaming tools."""

"""`tha4bridge` command line. Each command is a thin shell over a module that does the work."""
from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Animate a Talking Head Anime 4 character in real time for games and streaming tools.")


@app.callback()
def _main() -> None:
    """Animate a Talking Head Anime 4 character in real time for games and streaming tools."""


# --- student runtime commands (render, bench, inspect) --------------------------------------------

# --- daemon and client commands (serve, watch, snapshot, record) ----------------------------------

# --- tracker commands (calibrate, ...) --------------------------------------------------------------


if __name__ == "__main__":
    app()

"""`watch`, `snapshot`, `record`: look at a running daemon through the client library."""
from __future__ import annotations

import typer

from ..defaults import CONTROL_ENDPOINT, FRAMES_ENDPOINT
from .app import app


@app.command()
def watch(
    control: str = typer.Option(CONTROL_ENDPOINT, help="The daemon's control endpoint."),
    interval: float = typer.Option(1.0, help="Seconds between refreshes."),
    once: bool = typer.Option(False, help="Print one table and exit."),
) -> None:
    """A live terminal view of a running daemon's stats (fps, latency, packets)."""
    from .watch_tools import watch_stats

    raise typer.Exit(watch_stats(control, interval, once))


@app.command()
def snapshot(
    out: str = typer.Option(..., "--out", "-o", help="PNG file to write."),
    stream: str = typer.Option(None, help="Stream name (default: the first frame of any stream)."),
    frames: str = typer.Option(FRAMES_ENDPOINT, help="The daemon's frame endpoint."),
    timeout: float = typer.Option(10.0, help="Give up after this many seconds."),
    control: str = typer.Option(CONTROL_ENDPOINT, help="The daemon's control endpoint (to check --stream)."),
) -> None:
    """Save the next frame as a PNG."""
    from .watch_tools import snapshot as take

    raise typer.Exit(take(frames, out, stream, timeout, control))


@app.command()
def record(
    out: str = typer.Option(..., "--out", "-o", help="Folder for frame_000000.png ... and headers.json."),
    seconds: float = typer.Option(5.0, help="How long to record."),
    stream: str = typer.Option(None, help="Stream name (default: all streams)."),
    frames: str = typer.Option(FRAMES_ENDPOINT, help="The daemon's frame endpoint."),
    control: str = typer.Option(CONTROL_ENDPOINT, help="The daemon's control endpoint (to check --stream)."),
) -> None:
    """Save a PNG sequence and a JSON file of the frame headers."""
    from .watch_tools import record as rec

    raise typer.Exit(rec(frames, out, seconds, stream, control))

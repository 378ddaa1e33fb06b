"""`speak --wav FILE`: the character's mouth follows a WAV file's loudness, from now (the no-TTS lip sync)."""
from __future__ import annotations

import typer

from ..defaults import CONTROL_ENDPOINT
from .app import app


@app.command()
def speak(
    wav: str = typer.Option(..., "--wav", help="A PCM WAV file (8, 16 or 32-bit); read here, not by the daemon."),
    stream: str = typer.Option(None, help="Stream name (default: the only one)."),
    control: str = typer.Option(CONTROL_ENDPOINT, help="The daemon's control endpoint."),
    wait: bool = typer.Option(False, help="Return when the mouth has finished, not at once."),
) -> None:
    """Move the mouth with a WAV file's envelope in real time from now; start your audio player alongside.
    Playing the sound is not our job: timing is."""
    from .speak_tools import speak_wav

    raise typer.Exit(speak_wav(control, wav, stream, wait))

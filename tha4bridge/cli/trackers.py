"""`calibrate`, `trackers`: tracker input without rendering (the work is in tha4bridge/trackers/cli_tools.py)."""
from __future__ import annotations

import typer

from ..defaults import CONTROL_ENDPOINT, IFM_PORT, TRACKER_HOST, VMC_PORT
from .app import app

@app.command()
def calibrate(
    control: str = typer.Option(CONTROL_ENDPOINT, help="The running daemon's control endpoint."),
    clear: bool = typer.Option(False, "--clear", help="Forget the stored neutral instead of capturing one."),
    timeout: float = typer.Option(5.0, help="Seconds to wait for the daemon's answer."),
) -> None:
    """Take your current face and head as neutral (look straight at the camera, relaxed face)."""
    from ..trackers.cli_tools import calibrate_daemon

    raise typer.Exit(calibrate_daemon(control, clear, timeout))


@app.command()
def trackers(
    seconds: float = typer.Option(0.0, help="Stop after this long (0 = until Ctrl-C)."),
    vmc_port: int = typer.Option(VMC_PORT, help="VMC/OSC UDP port (0 = any free port)."),
    ifm_port: int = typer.Option(IFM_PORT, help="iFacialMocap UDP port (0 = any free port)."),
    ifm_phone: str = typer.Option(None, help="iPhone address: ask iFacialMocap there to send to us."),
    mapping_file: str = typer.Option(None, help="Tracker settings file (TOML/YAML, see protocols/osc.md)."),
    host: str = typer.Option(TRACKER_HOST, help="Address the tracker ports listen on."),
    webcam: str = typer.Option(None, metavar="INDEX|PATH", help="Also track a face with the built-in MediaPipe tracker (pip install 'tha4bridge\\[webcam]'): a camera index (0 is the first camera), a camera device, or a video file.", show_default="off"),
    webcam_fps: float = typer.Option(30.0, help="With --webcam: track at most this many frames per second."),
    face_model: str = typer.Option(None, help="With --webcam: the face_landmarker.task file to use.", show_default="~/.cache/tha4bridge/face_landmarker.task, downloaded when missing"),
) -> None:
    """Listen for trackers without rendering: shows packets, drops, the live source and key parameters."""
    from ..trackers.cli_tools import listen
    from .serve import _webcam

    raise typer.Exit(listen(seconds, vmc_port, ifm_port, ifm_phone, mapping_file, host,
                            webcam=_webcam(webcam, webcam_fps, face_model)))

"""`track`: a video of a face → a pose file that `render` reads (the work is in tha4bridge/trackers/video_poses.py)."""
from __future__ import annotations

import typer

from .app import app


@app.command()
def track(
    video: str = typer.Argument(..., help="A video file of a face (anything OpenCV reads: mp4, mkv, avi, webm, …)."),
    out: str = typer.Option(..., "--out", "-o", help="The pose file to write (.json): one pose per frame with its time, then `tha4bridge render --poses OUT`."),
    face_model: str = typer.Option(None, help="The face_landmarker.task file to use.", show_default="~/.cache/tha4bridge/face_landmarker.task, downloaded when missing"),
    mapping_file: str = typer.Option(None, help="Tracker settings file (TOML/YAML): gains, offsets, smoothing, idle (protocols/osc.md).", show_default="built-in settings"),
    calibration_file: str = typer.Option(None, help="Subtract the neutral face stored in this calibration file (`tha4bridge calibrate` writes one).", show_default="none: the clip as tracked"),
    breathing: bool = typer.Option(True, "--breathing/--no-breathing", help="Add the animator's breathing to every pose, as `serve` does."),
) -> None:
    """Track the face in a video with the built-in MediaPipe tracker (pip install 'tha4bridge\\[webcam]') and write
    its poses; frames without a face are bridged as tracking lost (hold, then the living idle)."""
    from ..trackers.video_poses import track_video

    try:
        result = track_video(video, out, model=face_model, mapping_file=mapping_file,
                             calibration_file=calibration_file, breathing=breathing)
    except ValueError as e:  # the extra, the model, the video, the options: one line each
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    if result.problem:
        typer.echo(f"warning: {result.problem}", err=True)
    typer.echo(result.summary(video, out))
    raise typer.Exit(1 if result.problem else 0)

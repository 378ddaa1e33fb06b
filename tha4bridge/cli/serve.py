"""`serve`: the daemon's options, as one DaemonConfig."""
from __future__ import annotations

import typer

from ..defaults import CONTROL_ENDPOINT, DEMO, FRAMES_ENDPOINT, IDLE_FPS, IFM_PORT, VMC_PORT
from .app import app

def _parse_student(arg: str) -> tuple[str | None, str]:
    """`DIR`, `demo` or `NAME=DIR` (a path that exists as given wins over the NAME= reading)."""
    from pathlib import Path

    name, sep, folder = arg.partition("=")
    if sep and name and not Path(arg).exists():
        return name, folder
    return None, arg


def _per_stream(values: list[str] | None, default):
    """Repeated `VALUE` (every stream) or `NAME=VALUE` (one stream) options → (default, {name: value})."""
    streams = {}
    for v in values or []:
        name, sep, value = v.rpartition("=")
        if sep:
            streams[name] = value
        else:
            default = value
    return default, streams


def _webcam(source: str | None, fps: float, face_model: str | None):
    """--webcam's options as a WebcamConfig, or None when --webcam is absent."""
    if source is None:
        return None
    from ..trackers.webcam import WebcamConfig

    return WebcamConfig(source=source, fps=fps, model=face_model)


@app.command()
def serve(
    student: list[str] = typer.Option(None, "--student", "-s", help="Student folder, `demo`, or NAME=DIR; repeat for several streams (default: demo)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, mps"),
    mode: str = typer.Option("exact", help="Student arithmetic: exact or fast."),
    backend: str = typer.Option("torch", help="torch, or onnxruntime: each student exported once (cached) and run by ONNX Runtime (pip install 'tha4bridge[onnx]')."),
    providers: str = typer.Option(None, help="With --backend onnxruntime: execution providers tried in order, e.g. dml,cuda,coreml,openvino,cpu (the default)."),
    fps: float = typer.Option(None, help="Never render a stream faster than this.", show_default="no cap: each new pose renders once the previous frame is out"),
    idle_fps: float = typer.Option(IDLE_FPS, help="Re-render an unchanged pose this often (idle motion keeps moving)."),
    breathing_period: float = typer.Option(None, help="Seconds per breath, for tracked, idle and control-held poses alike (default: the settings file's idle.breathing_rate, 20/min = 3 s); 0 = no breathing."),
    control: str = typer.Option(CONTROL_ENDPOINT, help="Control socket endpoint (ZeroMQ ROUTER)."),
    frames: str = typer.Option(FRAMES_ENDPOINT, help="Frame notification endpoint (ZeroMQ XPUB)."),
    transport: str = typer.Option("shm", help="shm (pixels in shared memory: ring files in /dev/shm, or the folder the environment variable THA4BRIDGE_RING_DIR names) or inline (pixels in the message)."),
    alpha: list[str] = typer.Option(None, help="straight or premultiplied alpha in the frames (default straight); NAME=MODE for one stream. Repeatable."),
    region: list[str] = typer.Option(None, help="Show only this crop of the 512x512 frame, x,y,w,h in pixels (a student renders it at a cost near its area; e.g. 160,48,192,192 is the head); NAME=x,y,w,h for one stream. Repeatable.", show_default="the whole frame"),
    slots: int = typer.Option(4, min=3, help="Ring slots per stream (shm)."),
    vmc_port: int = typer.Option(VMC_PORT, help="VMC/OSC UDP port (0 = any free port)."),
    ifm_port: int = typer.Option(IFM_PORT, help="iFacialMocap UDP port (0 = any free port)."),
    ifm_phone: str = typer.Option(None, help="iPhone address: the daemon asks iFacialMocap there to send.", show_default="none; any VMC sender works without it"),
    mapping_file: str = typer.Option(None, help="Tracker settings file, TOML or YAML: gains, offsets, smoothing, VRM table (format: protocols/osc.md, \"Settings file\").", show_default="built-in settings"),
    no_trackers: bool = typer.Option(False, "--no-trackers", help="Do not listen for trackers (control socket only)."),
    calibration_file: str = typer.Option(None, help="Where `calibrate` stores the neutral face (default: ~/.config/tha4bridge/)."),
    threads: int = typer.Option(None, help="Torch CPU threads.", show_default="every core when serving a student (measured faster even beside other busy processes), half of them for the demo"),
    http: str = typer.Option(None, help="Serve the viewer (OBS browser source), the panel and the JSON API at [HOST:]PORT (HOST defaults to 127.0.0.1; beyond loopback a token is required). Off by default."),
    http_allow_load: bool = typer.Option(False, "--http-allow-load", help="Allow `load` and `speak` (they name a file on this machine) over HTTP."),
    ort_web: str = typer.Option(None, help="With --http: serve this onnxruntime-web copy (npm package or its dist/) to the browser-runtime page /local/NAME.", show_default="the page loads it from the jsDelivr CDN"),
    expressions: str = typer.Option(None, help="A folder of *.toml expression files adding to or overriding the shipped expressions.", show_default="the shipped expressions only"),
    webcam: str = typer.Option(None, metavar="INDEX|PATH", help="Track a face with the built-in MediaPipe tracker (pip install 'tha4bridge\\[webcam]'): a camera index (0 is the first camera), a camera device, or a video file.", show_default="off"),
    webcam_fps: float = typer.Option(30.0, help="With --webcam: track at most this many frames per second."),
    face_model: str = typer.Option(None, help="With --webcam: the face_landmarker.task file to use.", show_default="~/.cache/tha4bridge/face_landmarker.task, downloaded when missing"),
) -> None:
    """Run the headless daemon: tracker poses in, RGBA frames out over shared memory + ZeroMQ.

    No iPhone? `--webcam 0` tracks your face from the first camera (pip install 'tha4bridge\\[webcam]'); or any
    VMC sender drives it (VSeeFace, XR Animator, VMagicMirror): send VMC to this machine's port --vmc-port
    (README, "Tracking"). Parameter names: `tha4bridge params`; a ready poses file:
    examples/poses.json (`tha4bridge render --poses examples/poses.json --out frames/`).
    """
    from ..daemon import DaemonConfig, serve as run

    default_alpha, stream_alpha = _per_stream(alpha, "straight")
    default_region, stream_region = _per_stream(region, None)
    cfg = DaemonConfig(students=[_parse_student(s) for s in (student or [DEMO])], device=device, mode=mode,
                       backend=backend, providers=providers,
                       fps=fps, idle_fps=idle_fps, breathing_period=breathing_period, control=control,
                       frames=frames, transport=transport, alpha=default_alpha, stream_alpha=stream_alpha,
                       region=default_region, stream_region=stream_region, slots=slots, trackers=not no_trackers,
                       vmc_port=vmc_port, ifm_port=ifm_port, ifm_phone=ifm_phone, mapping_file=mapping_file,
                       calibration_file=calibration_file, threads=threads,
                       http=http, http_allow_load=http_allow_load, ort_web=ort_web,
                       expressions=expressions, webcam=_webcam(webcam, webcam_fps, face_model))
    raise typer.Exit(run(cfg))

"""`tha4bridge` command line. Each command is a thin shell over a module that does the work."""
from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Animate a Talking Head Anime 4 character in real time for games and streaming tools.")


@app.callback()
def _main() -> None:
    """Animate a Talking Head Anime 4 character in real time for games and streaming tools."""


# --- student runtime commands (render, bench, inspect) --------------------------------------------

_STUDENT_HELP = "A character-model folder (character_model.yaml, character.png, face_morpher.pt, body_morpher.pt), or `demo` for the built-in character."
_MODE_HELP = "exact: numerically the official computation. fast: bfloat16 where it is safe (≥ 40 dB from exact), quicker."
_DEVICE_HELP = "auto picks CUDA when present, else Apple MPS, else the CPU; or name one: cpu, cuda, cuda:1, mps."


def _load(student: str, device: str, mode: str):
    from .student import ModelFileError, load_poser

    try:
        return load_poser(student, device=device, mode=mode)
    except (ModelFileError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)


@app.command()
def render(
    poses: str = typer.Option(..., "--poses", "-p", help="Poses to render: a .npy float32 array [N, 45], or a JSON list of {parameter name: value} objects (missing names stay neutral)."),
    out: str = typer.Option(..., "--out", "-o", help="Where to write: a path ending in .npy gets float32 [N, 4, 512, 512] in the official convention (linear, premultiplied, [-1, 1]); anything else is a folder that gets 0000.png, 0001.png, … (RGBA, sRGB, straight alpha)."),
    student: str = typer.Option("demo", "--student", "-s", help=_STUDENT_HELP),
    mode: str = typer.Option("exact", help=_MODE_HELP),
    device: str = typer.Option("auto", help=_DEVICE_HELP),
    batch: int = typer.Option(4, min=1, help="Poses rendered per forward pass."),
) -> None:
    """Render poses of a character to PNG files or a .npy array."""
    from .runtime_tools import read_poses, render_to

    try:
        arr = read_poses(poses)
    except (OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    poser = _load(student, device, mode)
    n = render_to(poser, arr, out, batch=batch)
    fixed = f" ({poser.fixes.total} out-of-range or NaN values clamped)" if poser.fixes.total else ""
    typer.echo(f"wrote {n} frame(s) to {out}{fixed}")


@app.command()
def bench(
    student: str = typer.Option("demo", "--student", "-s", help=_STUDENT_HELP),
    mode: str = typer.Option("exact", help=_MODE_HELP),
    device: str = typer.Option("auto", help=_DEVICE_HELP),
    frames: int = typer.Option(20, min=1, help="Frames to time (after 3 warm-up frames)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a sentence."),
) -> None:
    """Time rendering one frame at a time: milliseconds per frame (median and 90th percentile)."""
    import json

    from .runtime_tools import bench as run

    r = run(_load(student, device, mode), frames=frames)
    if as_json:
        typer.echo(json.dumps(r))
    else:
        typer.echo(f"{r['poser']} {r['mode']} on {r['device']} ({r['threads']} threads): "
                   f"{r['ms_per_frame_median']:.1f} ms/frame median, {r['ms_per_frame_p90']:.1f} ms p90, "
                   f"{r['fps_median']:.1f} fps")


@app.command()
def inspect(folder: str = typer.Argument(..., help="A character-model folder to examine.")) -> None:
    """Show what a character-model folder holds (files, sizes, parameter counts) and any problem found."""
    from .runtime_tools import inspect_folder

    info = inspect_folder(folder)
    typer.echo(f"folder: {info['folder']}")
    for name, size in info["files"].items():
        typer.echo(f"  {name:<24} {size:>10,} bytes")
    if "parameters" in info:
        p = info["parameters"]
        typer.echo(f"face morpher: {p['face_morpher']:,} parameters; body morpher: {p['body_morpher']:,} parameters")
        arch = "official" if info["official_architecture"] else f"custom {info['architecture']}"
        typer.echo(f"architecture: {arch}; image {info['image']['size'][1]}x{info['image']['size'][0]}, "
                   f"{info['image']['opaque_fraction']:.0%} opaque; {info['total_bytes']:,} bytes in all")
    for problem in info["problems"]:
        typer.echo(f"problem: {problem}")
    raise typer.Exit(1 if info["problems"] else 0)


# --- daemon and client commands (serve, watch, snapshot, record) ----------------------------------

def _parse_student(arg: str) -> tuple[str | None, str]:
    """`DIR`, `demo` or `NAME=DIR` (a path that exists as given wins over the NAME= reading)."""
    from pathlib import Path

    name, sep, folder = arg.partition("=")
    if sep and name and not Path(arg).exists():
        return name, folder
    return None, arg


@app.command()
def serve(
    student: list[str] = typer.Option(None, "--student", "-s", help="Student folder, `demo`, or NAME=DIR; repeat for several streams (default: demo)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, mps"),
    mode: str = typer.Option("exact", help="Student arithmetic: exact or fast."),
    fps: float = typer.Option(None, help="Never render a stream faster than this."),
    idle_fps: float = typer.Option(10.0, help="Re-render an unchanged pose this often (idle breathing)."),
    breathing_period: float = typer.Option(4.0, help="Seconds per idle breath when the pose sets no breathing; 0 = off."),
    control: str = typer.Option("tcp://127.0.0.1:5590", help="Control socket endpoint (ZeroMQ ROUTER)."),
    frames: str = typer.Option("tcp://127.0.0.1:5591", help="Frame notification endpoint (ZeroMQ XPUB)."),
    transport: str = typer.Option("shm", help="shm (pixels in shared memory) or inline (pixels in the message)."),
    alpha: list[str] = typer.Option(None, help="straight or premultiplied alpha in the frames (default straight); NAME=MODE for one stream. Repeatable."),
    slots: int = typer.Option(4, min=3, help="Ring slots per stream (shm)."),
    vmc_port: int = typer.Option(39539, help="VMC/OSC UDP port (0 = any free port)."),
    ifm_port: int = typer.Option(49983, help="iFacialMocap UDP port (0 = any free port)."),
    ifm_phone: str = typer.Option(None, help="iPhone address: the daemon asks iFacialMocap there to send."),
    mapping_file: str = typer.Option(None, help="Tracker mapping file (see the trackers docs)."),
    no_trackers: bool = typer.Option(False, "--no-trackers", help="Do not listen for trackers (control socket only)."),
    calibration_file: str = typer.Option(None, help="Where `calibrate` stores the neutral face (default: ~/.config/tha4bridge/)."),
    threads: int = typer.Option(None, help="Torch CPU threads (default: half the cores)."),
) -> None:
    """Run the headless daemon: tracker poses in, RGBA frames out over shared memory + ZeroMQ."""
    from .daemon import DaemonConfig, serve as run

    default_alpha, stream_alpha = "straight", {}
    for a in alpha or []:
        name, sep, value = a.rpartition("=")
        if sep:
            stream_alpha[name] = value
        else:
            default_alpha = value
    cfg = DaemonConfig(students=[_parse_student(s) for s in (student or ["demo"])], device=device, mode=mode,
                       fps=fps, idle_fps=idle_fps, breathing_period=breathing_period, control=control,
                       frames=frames, transport=transport, alpha=default_alpha, stream_alpha=stream_alpha, slots=slots, trackers=not no_trackers,
                       vmc_port=vmc_port, ifm_port=ifm_port, ifm_phone=ifm_phone, mapping_file=mapping_file,
                       calibration_file=calibration_file, threads=threads)
    raise typer.Exit(run(cfg))


@app.command()
def watch(
    control: str = typer.Option("tcp://127.0.0.1:5590", help="The daemon's control endpoint."),
    interval: float = typer.Option(1.0, help="Seconds between refreshes."),
    once: bool = typer.Option(False, help="Print one table and exit."),
) -> None:
    """A live terminal view of a running daemon's stats (fps, latency, packets)."""
    from .client import watch_stats

    raise typer.Exit(watch_stats(control, interval, once))


@app.command()
def snapshot(
    out: str = typer.Option(..., "--out", "-o", help="PNG file to write."),
    stream: str = typer.Option(None, help="Stream name (default: the first frame of any stream)."),
    frames: str = typer.Option("tcp://127.0.0.1:5591", help="The daemon's frame endpoint."),
    timeout: float = typer.Option(10.0, help="Give up after this many seconds."),
) -> None:
    """Save the next frame as a PNG."""
    from .client import snapshot as take

    raise typer.Exit(take(frames, out, stream, timeout))


@app.command()
def record(
    out: str = typer.Option(..., "--out", "-o", help="Folder for frame_000000.png ... and headers.json."),
    seconds: float = typer.Option(5.0, help="How long to record."),
    stream: str = typer.Option(None, help="Stream name (default: all streams)."),
    frames: str = typer.Option("tcp://127.0.0.1:5591", help="The daemon's frame endpoint."),
) -> None:
    """Save a PNG sequence and a JSON file of the frame headers."""
    from .client import record as rec

    raise typer.Exit(rec(frames, out, seconds, stream))


# --- tracker commands (calibrate, ...) --------------------------------------------------------------

@app.command()
def calibrate(
    control: str = typer.Option("tcp://127.0.0.1:5590", help="The running daemon's control endpoint."),
    clear: bool = typer.Option(False, "--clear", help="Forget the stored neutral instead of capturing one."),
    timeout: float = typer.Option(5.0, help="Seconds to wait for the daemon's answer."),
) -> None:
    """Take your current face and head as neutral (look straight at the camera, relaxed face)."""
    from .trackers.cli_tools import calibrate_daemon

    raise typer.Exit(calibrate_daemon(control, clear, timeout))


@app.command()
def trackers(
    seconds: float = typer.Option(0.0, help="Stop after this long (0 = until Ctrl-C)."),
    vmc_port: int = typer.Option(39539, help="VMC/OSC UDP port (0 = any free port)."),
    ifm_port: int = typer.Option(49983, help="iFacialMocap UDP port (0 = any free port)."),
    ifm_phone: str = typer.Option(None, help="iPhone address: ask iFacialMocap there to send to us."),
    mapping_file: str = typer.Option(None, help="Tracker settings file (TOML/YAML, see protocols/osc.md)."),
    host: str = typer.Option("0.0.0.0", help="Address the tracker ports listen on."),
) -> None:
    """Listen for trackers without rendering: shows packets, drops, the live source and key parameters."""
    from .trackers.cli_tools import listen

    raise typer.Exit(listen(seconds, vmc_port, ifm_port, ifm_phone, mapping_file, host))



if __name__ == "__main__":
    app()

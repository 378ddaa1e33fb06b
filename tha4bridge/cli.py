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
    alpha: str = typer.Option("straight", help="straight or premultiplied alpha in the frames."),
    slots: int = typer.Option(4, min=3, help="Ring slots per stream (shm)."),
    vmc_port: int = typer.Option(39539, help="VMC/OSC UDP port (0 = any free port)."),
    ifm_port: int = typer.Option(49983, help="iFacialMocap UDP port (0 = any free port)."),
    ifm_phone: str = typer.Option(None, help="iPhone address: the daemon asks iFacialMocap there to send."),
    mapping_file: str = typer.Option(None, help="Tracker mapping file (see the trackers docs)."),
    no_trackers: bool = typer.Option(False, "--no-trackers", help="Do not listen for trackers (control socket only)."),
) -> None:
    """Run the headless daemon: tracker poses in, RGBA frames out over shared memory + ZeroMQ."""
    from .daemon import DaemonConfig, serve as run

    cfg = DaemonConfig(students=[_parse_student(s) for s in (student or ["demo"])], device=device, mode=mode,
                       fps=fps, idle_fps=idle_fps, breathing_period=breathing_period, control=control,
                       frames=frames, transport=transport, alpha=alpha, slots=slots, trackers=not no_trackers,
                       vmc_port=vmc_port, ifm_port=ifm_port, ifm_phone=ifm_phone, mapping_file=mapping_file)
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


if __name__ == "__main__":
    app()

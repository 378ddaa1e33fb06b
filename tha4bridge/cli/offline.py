"""`render`, `bench`, `inspect`: a character without the daemon (the work is in tha4bridge/cli/offline_tools.py)."""
from __future__ import annotations

import typer

from ..defaults import DEMO
from .app import app

_STUDENT_HELP = "A character-model folder (character_model.yaml, character.png, face_morpher.pt, body_morpher.pt), or `demo` for the built-in character."
_MODE_HELP = "exact: numerically the official computation. fast: bfloat16 where it is safe (≥ 40 dB from exact), quicker."
_DEVICE_HELP = "auto picks CUDA when present, else Apple MPS, else the CPU; or name one: cpu, cuda, cuda:1, mps."


_BACKEND_HELP = "torch, or onnxruntime: the student exported once (cached) and run by ONNX Runtime; a .onnx file from `export` works as --student too."
_PROVIDERS_HELP = "With --backend onnxruntime: execution providers tried in order (default dml,cuda,coreml,openvino,cpu)."


def _load(student: str, device: str, mode: str, backend: str = "torch", providers: str | None = None):
    from ..load import load_poser
    from ..student import ModelFileError

    try:
        poser = load_poser(student, device=device, mode=mode, backend=backend, providers=providers)
    except (ModelFileError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    if getattr(poser, "report", None):  # which ONNX Runtime provider was chosen, and why not the others
        typer.echo(poser.report, err=True)
    return poser


@app.command()
def render(
    poses: str = typer.Option(..., "--poses", "-p", help="Poses to render: a JSON list of {parameter name: value} objects (missing names stay neutral; `tha4bridge params` lists them, examples/poses.json is one), a recording's headers.json, a .npy float32 array [N, 45] or the official pose_dataset.pt."),
    out: str = typer.Option(..., "--out", "-o", help="Where to write: a path ending in .npy gets float32 [N, 4, 512, 512] in the official convention (linear, premultiplied, [-1, 1]); anything else is a folder that gets 0000.png, 0001.png, … (RGBA, sRGB, straight alpha)."),
    student: str = typer.Option(DEMO, "--student", "-s", help=_STUDENT_HELP),
    mode: str = typer.Option("exact", help=_MODE_HELP),
    device: str = typer.Option("auto", help=_DEVICE_HELP),
    backend: str = typer.Option("torch", help=_BACKEND_HELP),
    providers: str = typer.Option(None, help=_PROVIDERS_HELP),
    batch: int = typer.Option(4, min=1, help="Poses rendered per forward pass."),
    region: str = typer.Option(None, help="Only this crop of the frame, x,y,w,h in pixels of the 512x512 frame (a student renders it at a cost near its area; its pixels equal the whole frame's).", show_default="the whole frame"),
) -> None:
    """Render poses of a character to PNG files or a .npy array."""
    from ..region import Region
    from .offline_tools import read_poses, render_to

    try:
        arr = read_poses(poses)
        crop = Region.parse(region) if region is not None else None
    except (OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    poser = _load(student, device, mode, backend, providers)
    try:
        crop = crop.check(poser.image_size, poser.image_size) if crop else None
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    n = render_to(poser, arr, out, batch=batch, region=crop)
    fixed = f" ({poser.fixes.total} out-of-range or NaN values clamped)" if poser.fixes.total else ""
    typer.echo(f"wrote {n} frame(s) to {out}{fixed}")


@app.command()
def bench(
    student: str = typer.Option(DEMO, "--student", "-s", help=_STUDENT_HELP),
    mode: str = typer.Option("exact", help=_MODE_HELP),
    device: str = typer.Option("auto", help=_DEVICE_HELP),
    backend: str = typer.Option("torch", help=_BACKEND_HELP),
    providers: str = typer.Option(None, help=_PROVIDERS_HELP),
    frames: int = typer.Option(20, min=1, help="Frames to time (after the visibility mask's calibration and 3 warm-up frames)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a sentence."),
) -> None:
    """Time rendering one frame at a time in the steady state: milliseconds per frame (median and 90th percentile)."""
    import json

    from .offline_tools import bench as run

    r = run(_load(student, device, mode, backend, providers), frames=frames)
    if as_json:
        typer.echo(json.dumps(r))
    else:
        typer.echo(f"{r['poser']} {r['mode']} on {r['device']} ({r['threads']} threads): "
                   f"{r['ms_per_frame_median']:.1f} ms/frame median, {r['ms_per_frame_p90']:.1f} ms p90, "
                   f"{r['fps_median']:.1f} fps")
        typer.echo(f"arithmetic: {r['arithmetic']}")
        typer.echo(r["steady_state"])


@app.command()
def inspect(folder: str = typer.Argument(..., help="A character-model folder to examine.")) -> None:
    """Show what a character-model folder holds (files, sizes, parameter counts) and any problem found."""
    from .offline_tools import inspect_folder

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
        typer.echo(f"--mode fast here: {info['fast_arithmetic']}")
    for problem in info["problems"]:
        typer.echo(f"problem: {problem}")
    raise typer.Exit(1 if info["problems"] else 0)

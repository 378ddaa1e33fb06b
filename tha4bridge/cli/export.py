"""`export`: a student folder as one ONNX graph (the work is in tha4bridge/onnx/export.py)."""
from __future__ import annotations

import typer

from .app import app


@app.command()
def export(
    student: str = typer.Option(..., "--student", "-s", help="A character-model folder (character_model.yaml, character.png, face_morpher.pt, body_morpher.pt)."),
    onnx: str = typer.Option(..., "--onnx", help="The .onnx file to write (protocols/onnx.md: pose [N, 45] in, image [N, 4, 512, 512] out)."),
    region: str = typer.Option(None, help="Only this crop of the 512x512 frame, x,y,w,h in pixels: the graph computes only what the crop needs and outputs image [N, 4, h, w] (metadata tha4bridge.region)."),
    fp16: bool = typer.Option(False, "--fp16", help="Store and compute in float16 inside the graph (half the file; for GPUs and the browser; ≥ 40 dB from exact)."),
    plain: bool = typer.Option(False, "--plain", help="Export the reference modules as they are instead of our rearranged graph (a baseline for benchmarks)."),
) -> None:
    """Export a student as one ONNX graph, checked with onnx.checker, for ONNX Runtime on any GPU or in the browser."""
    from ..onnx.export import export as run
    from ..onnx.runtime import ExportError
    from ..student import ModelFileError

    try:
        out = run(student, onnx, plain=plain, fp16=fp16, region=region)
    except (ExportError, ModelFileError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")

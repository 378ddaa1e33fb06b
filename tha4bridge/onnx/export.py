"""`tha4bridge export`: a student folder → one ONNX file (protocols/onnx.md says what is inside).

The graph is `graph.RearrangedStudent` (or, with `plain=True`, the reference modules as they are, which the
benchmark compares against). `fp16=True` converts every float tensor inside to float16 (ONNX Runtime's own
converter; the pose in and the image out stay float32): half the file, for GPUs and the browser.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch

from ..defaults import DEMO
from ..pose import NUM_PARAMETERS
from ..region import FRAME, Region, RegionError
from ..student import load_student_modules
from .graph import GraphLevers, RearrangedStudent, ReferenceStudent
from .runtime import ExportError, require_onnx, require_onnxruntime

OPSET = 17  # GridSample needs 16; 17 is what onnxruntime-web, DirectML and CoreML all run (protocols/onnx.md)
PLAIN_OPSET = 20  # the reference modules build their identity grid with affine_grid, which ONNX has from 20
INPUT, OUTPUT = "pose", "image"


def build_graph(student: str | Path, plain: bool = False, levers: GraphLevers = GraphLevers(),
                region: Region | None = None) -> torch.nn.Module:
    """The module to export for a student folder (a bad folder raises student.ModelFileError, one line);
    `region`: only that crop of the frame (output [N, 4, h, w])."""
    if str(student) == DEMO:
        raise ExportError("the demo character is procedural drawing code, not a student network: "
                          "export a character-model folder (distiller build --teacher demo makes one)")
    _, face, body, image = load_student_modules(student)
    if plain:
        return ReferenceStudent(face, body, image).eval()
    try:
        return RearrangedStudent(face, body, image, levers, region).eval()
    except ValueError as e:  # a crop of levels that do not double, or with a lever off
        raise ExportError(f"--region {region}: {e}") from None


def export(student: str | Path, out: str | Path, plain: bool = False, fp16: bool = False,
           region: str | None = None, levers: GraphLevers = GraphLevers()) -> Path:
    """Write the student as one ONNX graph to `out`, checked with onnx.checker; returns the path."""
    onnx = require_onnx()
    crop = None
    if region is not None:
        try:
            crop = Region.parse(region).check()
        except RegionError as e:
            raise ExportError(str(e)) from None
        if plain:
            raise ExportError("--plain exports the reference modules as they are, which have no crop; "
                              "leave out --plain or --region")
    model = build_graph(student, plain=plain, levers=levers, region=crop)
    buf = io.BytesIO()
    # The TorchScript exporter traces plain tensor code without onnxscript; batch 1 traces in half the time of 2.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation and tracer notes are about its own future, not this graph
        torch.onnx.export(model, (torch.zeros(1, NUM_PARAMETERS),), buf, input_names=[INPUT], output_names=[OUTPUT],
                          opset_version=PLAIN_OPSET if plain else OPSET, dynamo=False,
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                          do_constant_folding=False)  # folded tables would triple the file; ORT folds at load
    proto = onnx.load_from_string(buf.getvalue())
    if fp16:  # every float tensor inside in float16; the pose in and the image out stay float32
        require_onnxruntime()
        from onnxruntime.transformers.float16 import convert_float_to_float16
        from onnxruntime.transformers.onnx_model import OnnxModel

        fp16_model = OnnxModel(convert_float_to_float16(proto, keep_io_types=True))
        fp16_model.topological_sort()  # the converter appends its input casts last; the checker wants order
        proto = fp16_model.model
    h, w = (crop.h, crop.w) if crop else (FRAME, FRAME)
    proto.doc_string = f"tha4bridge student {Path(student).resolve().name}: pose [N, 45] -> image [N, 4, {h}, {w}]"
    meta = {"tha4bridge.graph": "plain" if plain else "rearranged",
            "tha4bridge.precision": "fp16" if fp16 else "fp32", "tha4bridge.student": Path(student).resolve().name}
    if crop:
        meta["tha4bridge.region"] = str(crop)  # x,y,w,h in the 512x512 frame
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto, full_check=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, out)
    return out

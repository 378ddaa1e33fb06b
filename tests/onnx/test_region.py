"""`export --region`: a crop as its own graph, the whole frame's pixels there (≥ 60 dB against our exact crop);
the onnxruntime backend, which serves whole frames, refuses it in one line."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'tha4bridge[onnx]')")

from tests.onnx.conftest import poses
from tests.shared import LAMBDA_00, needs_fixtures
from tha4bridge.imaging import psnr
from tha4bridge.region import Region
from tha4bridge.student import StudentPoser

pytestmark = needs_fixtures
HEAD = Region(160, 48, 192, 192)


def test_a_crop_export_renders_the_whole_frames_pixels_there(tmp_path):
    import onnxruntime as ort

    from tha4bridge.onnx.backend import OnnxPoser
    from tha4bridge.onnx.export import export
    from tha4bridge.onnx.runtime import ExportError

    path = export(LAMBDA_00, tmp_path / "head.onnx", region=str(HEAD))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].shape[1:] == [4, 192, 192]
    assert session.get_modelmeta().custom_metadata_map["tha4bridge.region"] == "160,48,192,192"
    exact = StudentPoser(LAMBDA_00, device="cpu", mode="exact")
    p = poses()
    got = torch.from_numpy(session.run(None, {"pose": p})[0])
    want = exact.render(p, HEAD)
    worst = min(psnr(a, b) for a, b in zip(got, want))
    assert worst >= 60.0, f"crop export vs exact crop: {worst:.1f} dB"
    with pytest.raises(ExportError, match="renders only the crop 160,48,192,192"):
        OnnxPoser(path, providers="cpu")
    assert np.isfinite(got.numpy()).all()

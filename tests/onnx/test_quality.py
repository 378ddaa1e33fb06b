"""ONNX Runtime (CPU provider) against our exact renderer: ≥ 60 dB float32, ≥ 40 dB with --fp16."""
from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'tha4bridge[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'tha4bridge[onnx]')")
from typer.testing import CliRunner

from tests.onnx.conftest import STUDENTS, poses
from tests.shared import LAMBDA_00, needs_fixtures
from tha4bridge.cli import app
from tha4bridge.imaging import psnr
from tha4bridge.onnx.backend import OnnxPoser
from tha4bridge.onnx.export import OPSET, build_graph
from tha4bridge.onnx.graph import GraphLevers

pytestmark = needs_fixtures


@pytest.mark.parametrize("name", list(STUDENTS))
def test_ort_cpu_matches_exact_on_random_and_extreme_poses(name, exported, exact_frames):
    poser = OnnxPoser(exported(name), providers="cpu")
    got = poser.render(poses())
    want = exact_frames(name)
    assert got.shape == want.shape == (2, 4, 512, 512)
    for i in range(2):  # each pose on its own: an extreme pose must not hide behind a good average
        assert psnr(got[i], want[i]) >= 60.0, (name, i, psnr(got[i], want[i]))
    assert "on cpu" in poser.report and "\n" not in poser.report


def test_the_file_is_checked_documented_and_batch_is_dynamic(exported):
    model = onnx.load(str(exported("lambda_00")))
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}.get("", None) == OPSET
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_value == 45  # a named (dynamic) batch, 45 pose values
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["tha4bridge.graph"] == "rearranged" and meta["tha4bridge.precision"] == "fp32"
    poser = OnnxPoser(exported("lambda_00"), providers="cpu")
    assert poser.render(poses()[0]).shape == (1, 4, 512, 512)  # batch 1 from a file traced at another size
    assert float(poser.rest_image().abs().sum()) > 0  # the character image, read back from the graph


def test_cli_fp16_export_is_half_the_size_and_within_40_db(tmp_path, exported, exact_frames):
    out = tmp_path / "fp16.onnx"
    r = CliRunner().invoke(app, ["export", "--student", str(LAMBDA_00), "--onnx", str(out), "--fp16"])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size < 0.6 * exported("lambda_00").stat().st_size
    got = OnnxPoser(out, providers="cpu").render(poses())
    want = exact_frames("lambda_00")
    for i in range(2):
        assert psnr(got[i], want[i]) >= 40.0, (i, psnr(got[i], want[i]))


def test_each_rearrangement_can_be_switched_off_with_the_same_pixels():
    """The benchmark's ablations compute the same image (the graph in torch: no export needed)."""
    import dataclasses

    import torch

    pose = torch.from_numpy(poses()[1:])
    with torch.no_grad():
        want = build_graph(LAMBDA_00)(pose)
        for f in dataclasses.fields(GraphLevers):
            got = build_graph(LAMBDA_00, levers=GraphLevers(**{f.name: False}))(pose)
            assert psnr(got, want) >= 100.0, (f.name, psnr(got, want))

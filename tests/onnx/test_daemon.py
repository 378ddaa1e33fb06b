"""The daemon serving frames from the ONNX Runtime backend: the torch backend's checks, a parametrised subset."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'tha4bridge[onnx]')")

from tests.daemon.util import Served, frame_matching
from tests.shared import FIXTURES, needs_fixtures
from tha4bridge.client import ControlError, FrameSubscriber

pytestmark = needs_fixtures
STILL = {"breathing": 0.0}  # an explicit breathing value: stable pixels


@pytest.fixture(scope="module")
def ort_daemon(tmp_path_factory, exported):
    # an exported file as the student (what a user deploys), under the folder's name
    d = Served("--backend", "onnxruntime", "--providers", "cuda,cpu", "--idle-fps", "2",
               "--student", f"lambda_00={exported('lambda_00')}", log_dir=tmp_path_factory.mktemp("ort"))
    yield d
    assert d.stop() == 0


def control_frame(d: Served, pose: dict):
    with FrameSubscriber(d.frames, streams="lambda_00") as sub:
        t = time.time()
        d.ctl.set_pose("lambda_00", pose, hold=0, replace=True)
        return frame_matching(sub, lambda f: f.header["pose_source"] == "control" and f.header["t_pose"] >= t,
                              timeout=120)


@pytest.mark.parametrize("transport_check", ["matches_official_zero_pose", "set_pose_changes_the_mouth"])
def test_ort_backend_frames(ort_daemon, transport_check):
    if transport_check == "matches_official_zero_pose":  # as tests/daemon/test_serve.py checks the torch backend
        import torch

        from tha4bridge.imaging import to_rgba8

        f = control_frame(ort_daemon, STILL)
        with np.load(FIXTURES / "reference" / "lambda_00" / "outputs_f16.npz") as npz:
            official = torch.from_numpy(npz["blended"][0:1].astype(np.float32))
        ref = to_rgba8(official)[0].numpy().astype(np.float64)
        got = f.pixels.astype(np.float64)
        premult = lambda x: np.concatenate([x[..., :3] * x[..., 3:] / 255.0, x[..., 3:]], axis=-1)  # noqa: E731
        err = np.abs(premult(got) - premult(ref))
        assert err.max() <= 2.5 and err.mean() < 0.05, (err.max(), err.mean())
    else:
        closed = control_frame(ort_daemon, STILL).pixels.astype(np.int16)
        open_ = control_frame(ort_daemon, {**STILL, "mouth_aaa": 1.0}).pixels.astype(np.int16)
        changed = np.abs(open_ - closed).max(axis=-1) > 8
        assert changed[80:208, 192:320].sum() > 50  # the face crop (the mouth) moved


def test_hello_reports_the_backend_and_a_bad_load_is_one_line(ort_daemon, tmp_path):
    (s,) = ort_daemon.ctl.streams()
    assert s["name"] == "lambda_00"
    log = ort_daemon.log.read_text()
    assert "onnxruntime" in log and "on cpu (cuda: not in this onnxruntime build)" in log
    (tmp_path / "character_model.yaml").write_text("character_image_file_name: nope.png\n")
    with pytest.raises(ControlError) as e:
        ort_daemon.ctl.load(str(tmp_path), name="broken")
    assert e.value.code == "load_failed" and "\n" not in str(e.value)
    assert ort_daemon.ctl.hello()["ok"]

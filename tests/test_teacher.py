"""The THA4 teacher re-implementation: state-dict layout against the manifest, load errors, and the official
outputs for deterministic synthetic weights (../shared/fixtures/tha4/reference/teacher_synthetic)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distiller.teacher.encoder_decoder import EyebrowDecomposer, FaceMorpher
from distiller.teacher.teacher import NETWORKS, Teacher, TeacherFileError, TeacherPoser, load_checked
from tha4bridge.imaging import load_character_png, psnr

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
THA4 = SHARED / "fixtures" / "tha4"
MANIFEST = THA4 / "teacher_state_dict_shapes.json"
SYNTHETIC = THA4 / "reference" / "teacher_synthetic"

needs_manifest = pytest.mark.skipif(not MANIFEST.is_file(), reason=f"fixture {MANIFEST} is absent")
needs_synthetic = pytest.mark.skipif(not (SYNTHETIC / "make_weights.py").is_file(),
                                     reason=f"fixture {SYNTHETIC} is absent")


@needs_manifest
def test_every_key_and_shape_matches_the_manifest():
    manifest = json.loads(MANIFEST.read_text())
    assert list(manifest) == list(NETWORKS)
    teacher = Teacher()
    for name in NETWORKS:
        ours = {k: list(v.shape) for k, v in getattr(teacher, name).state_dict().items()}
        assert ours == manifest[name], name
        assert list(ours) == list(manifest[name]), f"{name}: key order differs"


def test_load_errors_are_one_line_naming_file_and_key(tmp_path):
    net = FaceMorpher()
    good = net.state_dict()

    def error_for(sd_or_bytes) -> str:
        path = tmp_path / "face_morpher.pt"
        if isinstance(sd_or_bytes, bytes):
            path.write_bytes(sd_or_bytes)
        else:
            torch.save(sd_or_bytes, path)
        with pytest.raises(TeacherFileError) as e:
            load_checked(net, path)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg
        return msg

    assert "missing key 'downsample_blocks.0.0.weight'" in error_for({})
    wrong = dict(good)
    wrong["eye_alpha.0.bias"] = torch.zeros(3)
    msg = error_for(wrong)
    assert "eye_alpha.0.bias" in msg and "[3]" in msg and "[1]" in msg
    extra = dict(good)
    extra["body.extra"] = torch.zeros(1)
    assert "unexpected key 'body.extra'" in error_for(extra)
    assert "not a loadable" in error_for(b"PK\x03\x04 truncated")
    assert "not a state dict" in error_for([torch.zeros(1)])
    with pytest.raises(TeacherFileError, match="file not found"):
        load_checked(EyebrowDecomposer(), tmp_path / "nope.pt")


def _synthetic_state_dicts():
    spec = importlib.util.spec_from_file_location("teacher_synthetic_make_weights", SYNTHETIC / "make_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_state_dicts(str(MANIFEST))


@pytest.fixture(scope="module")
def synthetic_run():
    """One batched teacher run over the 3 reference poses (the expensive part, ~10-20 s on 2 cores)."""
    teacher = Teacher().load_state_dicts(_synthetic_state_dicts())
    image = load_character_png(THA4 / json.loads((SYNTHETIC / "meta.json").read_text())["image"])
    poser = TeacherPoser(teacher, image, mode="exact")
    poses = torch.from_numpy(np.load(SYNTHETIC / "poses.npy"))
    out = poser.outputs(poses)
    return out.official_list(), np.load(SYNTHETIC / "outputs_f16.npz"), poser, poses


# Entries whose value passes through a warp of the 512 (or 256) image by a predicted grid. With these random
# weights the grids are large (mean |Δ| ≈ 0.6 of the half-width), so a 1e-5 grid difference moves samples by a
# visible fraction of a pixel: even the fixture's own grid and image, warped, reproduce its `upscaler_warped` only
# at 51–55 dB (float16 storage). Float32 kernels other than the official torch build's cannot reach 60 dB there;
# a wrong data flow scores 6–14 dB (e.g. another pose: 14 dB), so 30 dB still checks the structure.
WARP_DOMINATED = {"final", "upscaler_warped", "body_morpher_merged_256"}


@needs_synthetic
def test_synthetic_weights_reproduce_the_official_outputs(synthetic_run):
    ours, ref, _, poses = synthetic_run
    index = json.loads((SYNTHETIC / "meta.json").read_text())["output_index_in_official_list"]
    assert len(ours) == 33
    report = {}
    for name, i in index.items():
        expected = ref[name].astype(np.float32)
        assert tuple(ours[i].shape) == expected.shape, name
        report[name] = [psnr(ours[i][k], expected[k]) for k in range(len(poses))]
    print("PSNR dB per pose:", {k: [round(v, 1) for v in vs] for k, vs in report.items()})
    for name, values in report.items():
        bound = 30.0 if name in WARP_DOMINATED else 60.0
        assert min(values) >= bound, f"{name}: {values}"


@needs_synthetic
@pytest.mark.xfail(strict=False, reason="warp-amplified float32 differences vs the official torch build "
                                        "(see WARP_DOMINATED); kept visible rather than hidden")
def test_warp_dominated_entries_at_60_db(synthetic_run):
    ours, ref, _, poses = synthetic_run
    index = json.loads((SYNTHETIC / "meta.json").read_text())["output_index_in_official_list"]
    for name in sorted(WARP_DOMINATED):
        assert min(psnr(ours[index[name]][k], ref[name][k].astype(np.float32)) for k in range(len(poses))) >= 60


@needs_synthetic
def test_poser_render_and_face_outputs_agree_with_the_full_run(synthetic_run):
    ours, _, poser, poses = synthetic_run
    face = poser.face_outputs(poses[:1])
    assert torch.equal(face.face, ours[11][:1])
    assert poser.describe()["networks"] == list(NETWORKS)


@needs_synthetic
def test_bf16_mode_runs_and_returns_float32(synthetic_run):
    """The fast mode (bf16 autocast, channels-last): float32 outputs of the right shapes, close in structure.
    Random weights amplify rounding (see WARP_DOMINATED), so closeness is checked on the grid, not the image."""
    import copy

    ours, _, poser, poses = synthetic_run
    fast = TeacherPoser(copy.deepcopy(poser.teacher), poser.image, mode="bf16")
    out = fast.outputs(poses[:1])
    lst = out.official_list()
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in lst)
    assert [tuple(t.shape) for t in lst] == [tuple(t[:1].shape) for t in ours]
    assert psnr(lst[3], ours[3][:1]) > 25  # upscaler grid change: 29.9 dB measured; another pose scores ~14
    with pytest.raises(ValueError, match="teacher mode"):
        TeacherPoser(poser.teacher, poser.image, mode="fp16")

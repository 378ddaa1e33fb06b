"""The THA4 teacher re-implementation: state-dict layout against the manifest, load errors, and the official
outputs for deterministic synthetic weights (../shared/fixtures/tha4/reference/teacher_synthetic)."""
from __future__ import annotations

import copy
import importlib.util
import json

import numpy as np
import pytest
import torch

from distiller.teacher.encoder_decoder import EyebrowDecomposer, FaceMorpher
from distiller.teacher.teacher import NETWORKS, Teacher, TeacherFileError, TeacherPoser, load_checked
from tests.shared import FIXTURES as THA4
from tha4bridge.student.arithmetic import cpu_bf16_native
from tha4bridge.imaging import load_character_png, psnr

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


# Why the fixture is checked through float64 (measured, see the closing note of issue 6):
# with these untrained weights the networks amplify rounding enormously (dozens of layers, then warps by grids of
# half the image width), so a float32 result depends on the machine's kernels. Our float32 run
# is 33-72 dB from the exact (float64) result of the very same network, depending on the entry; the official code
# run here (torch 1.13.1, 2.13 or 2.14) scores the same 35-60 dB against the fixture as ours, and equals ours bit
# for bit when both use the same transposed-convolution kernel (benchmarks/compare_official_teacher.py). The
# fixture therefore holds one machine's float32 rounding, and no float32 implementation can be held to 60 dB on
# every entry of it elsewhere. What is machine-independent is the exact computation: run in
# float64, our network must land as close to the fixture as float32 arithmetic itself gets (our float32 vs our
# float64, measured in the same test). A wrong detail lands far below: an antialiased resize to 256 instead of a
# plain bilinear one scored 21 dB on the final image against a 42 dB bar; the wrong pose scores 6-14 dB.
EXACT_POSE = 1  # the hand-set pose: eyebrows, a wink, mouth, iris and every rotation at once
NOISE_MARGIN_DB = 6.0  # measured: the fixture sits within 0.5 dB of the float32 noise floor on every entry
STRUCTURE_FLOOR_DB = 25.0  # float32 vs the fixture, whatever the machine: a wrong data flow scores 6-14 dB


def _fixture_index() -> dict[str, int]:
    return json.loads((SYNTHETIC / "meta.json").read_text())["output_index_in_official_list"]


@pytest.mark.slow  # the teacher's full synthetic run: ~45 s of setup on 2 cores
@needs_synthetic
def test_float32_run_has_the_official_structure(synthetic_run):
    ours, ref, _, poses = synthetic_run
    assert len(ours) == 33
    report = {}
    for name, i in _fixture_index().items():
        expected = ref[name].astype(np.float32)
        assert tuple(ours[i].shape) == expected.shape, name
        report[name] = [psnr(ours[i][k], expected[k]) for k in range(len(poses))]
    print("float32 vs fixture, PSNR dB per pose:", {k: [round(v, 1) for v in vs] for k, vs in report.items()})
    for name, values in report.items():
        assert min(values) >= STRUCTURE_FLOOR_DB, f"{name}: {values}"


@pytest.mark.slow  # the teacher's full synthetic run: ~45 s of setup on 2 cores
@needs_synthetic
def test_exact_arithmetic_reproduces_the_official_outputs(synthetic_run):
    """Our network in float64 vs the official float32 outputs, per entry, against the float32 noise floor."""
    ours, ref, poser, poses = synthetic_run
    teacher64 = copy.deepcopy(poser.teacher).double()
    with torch.inference_mode():
        exact = teacher64(poser.image[None].double(), poses[EXACT_POSE:EXACT_POSE + 1].double()).official_list()
    del teacher64
    rows = []
    for name, i in _fixture_index().items():
        expected = ref[name][EXACT_POSE].astype(np.float64)
        exact_vs_fixture = psnr(exact[i][0], expected)
        noise_floor = psnr(ours[i][EXACT_POSE].double(), exact[i][0])
        rows.append((name, exact_vs_fixture, noise_floor))
    print("entry: float64 vs fixture | float32 vs float64 (noise floor), dB")
    for name, a, b in rows:
        print(f"  {name}: {a:.1f} | {b:.1f}")
    for name, exact_vs_fixture, noise_floor in rows:
        assert exact_vs_fixture >= noise_floor - NOISE_MARGIN_DB, (name, exact_vs_fixture, noise_floor)


@pytest.mark.slow  # the teacher's full synthetic run: ~45 s of setup on 2 cores
@needs_synthetic
def test_poser_render_and_face_outputs_agree_with_the_full_run(synthetic_run):
    """The 3-pose run went through in chunks of one pose (CPU): every entry equals a run of that pose alone."""
    ours, _, poser, poses = synthetic_run
    assert poser.chunk == 1
    face = poser.face_outputs(poses[2:3])
    assert torch.equal(face.face, ours[11][2:3])
    alone = poser.outputs(poses[2:3]).official_list()
    assert all(torch.equal(a, b[2:3]) for a, b in zip(alone, ours))
    assert poser.describe()["networks"] == list(NETWORKS)


@pytest.mark.slow  # the teacher's full synthetic run: ~45 s of setup on 2 cores
@needs_synthetic
@pytest.mark.skipif(not cpu_bf16_native()[0],
                    reason="this CPU has no native bfloat16 (AVX512-BF16/AMX): emulated, the teacher's bf16 pass "
                           "takes ~100 s of the suite's 10 minutes here; it runs on CPUs that have it")
def test_bf16_mode_runs_and_returns_float32(synthetic_run):
    """The fast mode (bf16 autocast, channels-last): float32 outputs of the right shapes, close in structure.
    Random weights amplify rounding (see above), so closeness is checked on the grid, not the image."""
    ours, _, poser, poses = synthetic_run
    fast = TeacherPoser(copy.deepcopy(poser.teacher), poser.image, mode="bf16")
    out = fast.outputs(poses[:1])
    lst = out.official_list()
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in lst)
    assert [tuple(t.shape) for t in lst] == [tuple(t[:1].shape) for t in ours]
    assert psnr(lst[3], ours[3][:1]) > 25  # upscaler grid change: 29.9 dB measured; another pose scores ~14
    with pytest.raises(ValueError, match="teacher mode"):
        TeacherPoser(poser.teacher, poser.image, mode="fp16")

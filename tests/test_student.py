"""Student runtime: faithful to the official outputs, fast mode close to exact, bad folders refused in one line."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tha4bridge.demo import DemoPoser
from tha4bridge.imaging import load_character_png, psnr, to_rgba8
from tha4bridge.pose import LOWER, NEUTRAL, PARAMETER_NAMES, UPPER, pose_from_dict, sanitize
from tha4bridge.load import load_poser
from tha4bridge.student import ModelFileError, StudentPoser

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "tha4"
LAMBDA_00 = FIXTURES / "students" / "lambda_00"
REFERENCE = FIXTURES / "reference" / "lambda_00"
needs_fixtures = pytest.mark.skipif(not LAMBDA_00.is_dir(), reason="../shared/fixtures/tha4 is absent (a fresh clone without the shared fixtures)")


def random_poses(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (LOWER + (UPPER - LOWER) * rng.random((n, 45))).astype(np.float32)


@pytest.fixture(scope="module")
def exact():
    return StudentPoser(LAMBDA_00, device="cpu", mode="exact")


@needs_fixtures
def test_exact_matches_official_outputs_on_all_52_poses(exact):
    poses = np.load(REFERENCE / "poses.npy")
    ref = np.load(REFERENCE / "outputs_f16.npz")["blended"]
    scores = []
    for start in range(0, len(poses), 4):
        out = exact.render(poses[start:start + 4])
        scores += [psnr(out[k], ref[start + k].astype(np.float32)) for k in range(out.shape[0])]
    assert len(scores) == 52
    worst = min(scores)
    assert worst >= 60.0, f"worst pose {int(np.argmin(scores))}: {worst:.1f} dB"


@needs_fixtures
def test_renderer_matches_the_plain_module_forward(exact):
    poses = random_poses(2, seed=1)
    plain = exact.reference_forward(poses)
    fast_path = exact.render(poses)
    for a, b in zip(fast_path, plain[0]):
        assert psnr(a, b) > 90.0
    # The face crop alone, against the official face outputs too.
    ref_face = np.load(REFERENCE / "outputs_f16.npz")["face"][46].astype(np.float32)
    face = exact.reference_forward(np.load(REFERENCE / "poses.npy")[46])[5][0]
    assert psnr(face, ref_face) > 60.0


@needs_fixtures
def test_fast_mode_stays_within_40_db_of_exact(exact):
    fast = StudentPoser(LAMBDA_00, device="cpu", mode="fast")
    poses = random_poses(4, seed=2)
    a, b = exact.render(poses).clone(), fast.render(poses)
    worst = min(psnr(x, y) for x, y in zip(a, b))
    assert worst >= 40.0, f"fast vs exact: {worst:.1f} dB"


@needs_fixtures
def test_batch_equals_one_at_a_time(exact):
    poses = random_poses(3, seed=3)
    batched = exact.render(poses).clone()
    for k in range(3):
        assert psnr(exact.render(poses[k])[0], batched[k]) > 100.0


@needs_fixtures
def test_nan_and_out_of_range_are_fixed_and_counted(exact):
    before = exact.fixes.total
    p = np.zeros(45, np.float32)
    p[0], p[1], p[39] = np.nan, 5.0, -np.inf
    out = exact.render(p).clone()
    assert torch.isfinite(out).all()
    assert exact.fixes.total - before == 3
    clean = p.copy()
    clean[0], clean[1], clean[39] = 0.0, 1.0, 0.0
    assert psnr(out[0], exact.render(clean)[0]) > 100.0


def test_sanitize_reports_each_fix():
    p = np.array(NEUTRAL)
    p[3], p[40], p[44] = np.nan, 2.5, -0.5
    clean, fixes = sanitize(p)
    assert fixes.non_finite == 1 and fixes.out_of_range == 2
    assert clean[3] == 0.0 and clean[40] == 1.0 and clean[44] == 0.0
    with pytest.raises(ValueError, match="unknown pose parameter 'eye_wink'"):
        pose_from_dict({"eye_wink": 1.0})


# --- bad folders: one line naming the file and the problem ---------------------------------------

@pytest.fixture
def good_copy(tmp_path):
    if not LAMBDA_00.is_dir():
        pytest.skip("../shared/fixtures/tha4 is absent")
    dst = tmp_path / "student"
    shutil.copytree(LAMBDA_00, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


def refused(folder: Path) -> str:
    with pytest.raises(ModelFileError) as e:
        StudentPoser(folder, device="cpu")
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_file(good_copy):
    (good_copy / "body_morpher.pt").unlink()
    assert refused(good_copy) == f"{good_copy / 'body_morpher.pt'}: missing (named in character_model.yaml)"


def test_missing_yaml_and_yaml_key(good_copy):
    y = good_copy / "character_model.yaml"
    y.write_text("character_image_file_name: character.png\nface_morpher_file_name: face_morpher.pt\n")
    assert refused(good_copy) == f"{y}: missing key body_morpher_file_name"
    y.unlink()
    assert "character_model.yaml: missing" in refused(good_copy)


def test_png_not_512_rgba(good_copy):
    png = good_copy / "character.png"
    Image.new("RGB", (512, 512)).save(png)
    assert refused(good_copy) == f"{png}: must be a 512x512 RGBA PNG, got 512x512 RGB"
    Image.new("RGBA", (256, 256)).save(png)
    assert refused(good_copy) == f"{png}: must be a 512x512 RGBA PNG, got 256x256 RGBA"


def _edit_state_dict(path: Path, edit) -> None:
    sd = torch.load(path, map_location="cpu", weights_only=True)
    edit(sd)
    torch.save(sd, path)


def test_state_dict_missing_extra_and_wrong_shape(good_copy):
    face = good_copy / "face_morpher.pt"
    _edit_state_dict(face, lambda sd: sd.pop("siren.last_linear.bias"))
    assert refused(good_copy) == f"{face}: missing key siren.last_linear.bias (expected shape (4,))"
    _edit_state_dict(face, lambda sd: sd.__setitem__("siren.last_linear.bias", torch.zeros(4)) or sd.__setitem__("extra.weight", torch.zeros(2)))
    assert refused(good_copy) == f"{face}: unexpected key extra.weight (shape (2,))"
    body = good_copy / "body_morpher.pt"
    _edit_state_dict(body, lambda sd: sd.__setitem__("last_linear.weight", torch.zeros(8, 90, 1, 1)))
    msg = refused(good_copy)
    assert msg.startswith(f"{face}:") or msg == f"{body}: key last_linear.weight has shape (8, 90, 1, 1), expected (7, 90, 1, 1)"


def test_wrong_shape_named_with_both_shapes(good_copy):
    body = good_copy / "body_morpher.pt"
    _edit_state_dict(body, lambda sd: sd.__setitem__("last_linear.weight", torch.zeros(8, 90, 1, 1)))
    assert refused(good_copy) == f"{body}: key last_linear.weight has shape (8, 90, 1, 1), expected (7, 90, 1, 1)"


def test_truncated_and_non_zip_pt(good_copy):
    body = good_copy / "body_morpher.pt"
    data = body.read_bytes()
    body.write_bytes(data[: len(data) // 2])
    msg = refused(good_copy)
    assert msg.startswith(f"{body}: ") and "truncated" in msg
    body.write_bytes(b"this is not a checkpoint")
    msg = refused(good_copy)
    assert msg.startswith(f"{body}: ") and ("zip" in msg or "truncated" in msg)


def test_pickled_code_is_refused_not_run(good_copy, tmp_path):
    """weights_only=True: a .pt that would run code on load is refused in one line."""
    marker = tmp_path / "ran"
    body = good_copy / "body_morpher.pt"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"x": Evil()}, body)
    msg = refused(good_copy)
    assert msg.startswith(f"{body}: ") and not marker.exists()


# --- image conventions -------------------------------------------------------------------------

@needs_fixtures
def test_png_round_trip_through_the_official_convention():
    png = LAMBDA_00 / "character.png"
    original = np.asarray(Image.open(png).convert("RGBA")).astype(int)
    back = to_rgba8(load_character_png(png)[None])[0].numpy().astype(int)
    visible = original[..., 3] > 8  # premultiplying by a tiny alpha loses the colour of near-clear pixels
    assert np.abs(back[..., 3] - original[..., 3]).max() <= 1
    assert np.abs(back[visible, :3] - original[visible, :3]).max() <= 2


def test_premultiplied_output_is_straight_times_alpha():
    frames = DemoPoser("cpu").render(NEUTRAL)
    straight = to_rgba8(frames)[0].numpy().astype(int)
    premul = to_rgba8(frames, premultiplied=True)[0].numpy().astype(int)
    expect = (straight[..., :3] * straight[..., 3:4] + 127) // 255
    assert np.abs(premul[..., :3] - expect).max() <= 1
    assert (premul[..., 3] == straight[..., 3]).all()


# --- the demo character ------------------------------------------------------------------------

def test_demo_responds_to_every_parameter():
    demo = load_poser("demo", device="cpu")
    poses = [NEUTRAL]
    for i, name in enumerate(PARAMETER_NAMES):
        p = NEUTRAL.copy()
        p[i] = -1.0 if name in ("iris_rotation_x", "head_x", "neck_z", "body_z") else 1.0
        poses.append(p)
    out = torch.cat([demo.render(np.stack(poses[k:k + 12])) for k in range(0, len(poses), 12)])
    changed = {name: float((out[i + 1] - out[0]).abs().amax()) for i, name in enumerate(PARAMETER_NAMES)}
    still = [n for n, d in changed.items() if d < 0.2]
    assert not still, f"the demo ignores {still}"


# --- CLI ----------------------------------------------------------------------------------------

def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tha4bridge.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_cli_render_and_bench_on_the_demo(tmp_path):
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps([{"eye_wink_left": 1.0, "mouth_aaa": 1.0}]))
    r = run_cli("render", "--poses", poses, "--out", tmp_path / "png")
    assert r.returncode == 0, r.stderr
    img = Image.open(tmp_path / "png" / "0000.png")
    assert img.size == (512, 512) and img.mode == "RGBA"
    r = run_cli("bench", "--frames", "2", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["ms_per_frame_median"] > 0 and res["device"] == "cpu" and "mode" in res


@needs_fixtures
@pytest.mark.parametrize("name", ["lambda_00", "lambda_01"])
def test_cli_render_npy_and_bench_on_fixture_students(tmp_path, name):
    folder = FIXTURES / "students" / name
    poses = tmp_path / "p.npy"
    np.save(poses, random_poses(2, seed=4))
    r = run_cli("render", "-s", folder, "-p", poses, "-o", tmp_path / "out.npy", "--mode", "fast")
    assert r.returncode == 0, r.stderr
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (2, 4, 512, 512) and out.dtype == np.float32
    r = run_cli("bench", "-s", folder, "--frames", "2", "--json", "--mode", "exact")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["mode"] == "exact"


def test_cli_refuses_a_bad_folder_in_one_line(tmp_path):
    (tmp_path / "character_model.yaml").write_text("character_image_file_name: character.png\n")
    r = run_cli("render", "-s", tmp_path, "-p", tmp_path / "none.npy", "-o", tmp_path / "o")
    assert r.returncode == 2 and "none.npy" in r.stderr  # the poses file is read first
    np.save(tmp_path / "p.npy", np.zeros((1, 45), np.float32))
    r = run_cli("render", "-s", tmp_path, "-p", tmp_path / "p.npy", "-o", tmp_path / "o")
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {tmp_path / 'character_model.yaml'}: missing key face_morpher_file_name"
    r = run_cli("inspect", tmp_path)
    assert r.returncode == 1 and "problem:" in r.stdout

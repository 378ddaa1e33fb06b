"""`distiller check`: every bad input is reported in its own sentence; good inputs pass."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distiller.check import check_image, check_mask
from tha4bridge.demo import DemoPoser, demo_face_mask
from tha4bridge.imaging import to_rgba8


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """The demo character and its face mask, written as the PNGs a user would bring."""
    d = tmp_path_factory.mktemp("good")
    rgba = to_rgba8(DemoPoser(device="cpu").rest_image()[None])[0].numpy()
    mask = np.zeros((512, 512, 3), np.uint8)
    mask[80:208, 192:320] = (demo_face_mask()[0].numpy()[..., None] * 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(d / "character.png")
    Image.fromarray(mask, "RGB").save(d / "mask.png")
    return d / "character.png", d / "mask.png", rgba, mask


def _save(tmp_path: Path, name: str, array: np.ndarray, mode: str) -> Path:
    path = tmp_path / name
    Image.fromarray(array, mode).save(path)
    return path


def test_good_inputs_pass(good):
    image, mask, _, _ = good
    assert check_image(image) == [] and check_mask(mask) == []


def test_bad_images_each_give_their_sentence(good, tmp_path):
    _, _, rgba, _ = good
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    low = np.zeros_like(rgba)
    low[200:] = rgba[:312]  # the character moved 200 rows down: the head is below the face region
    left = np.zeros_like(rgba)
    left[:, :200] = rgba[:, 200:400]  # moved to the left edge
    framed = rgba.copy()
    framed[0:4] = 255  # an opaque strip along the top edge
    cases = {
        "does not exist": tmp_path / "missing.png",
        "must be a .png": tmp_path / "notes.txt",
        "not a readable PNG": tmp_path / "broken.png",
        "needs exactly 512x512": _save(tmp_path, "small.png", rgba[:256, :256], "RGBA"),
        "has no transparency": _save(tmp_path, "rgb.png", rgba[..., :3].copy(), "RGB"),
        "opaque everywhere": _save(tmp_path, "opaque.png", np.full_like(rgba, 255), "RGBA"),
        "edge is not transparent": _save(tmp_path, "framed.png", framed, "RGBA"),
        "face region (rows 80-208, columns 192-320) is mostly transparent": _save(tmp_path, "low.png", low, "RGBA"),
        "not centred horizontally": _save(tmp_path, "left.png", left, "RGBA"),
    }
    for expected, path in cases.items():
        problems = check_image(path)
        assert any(expected in p for p in problems), (expected, problems)
        assert all(p.endswith(".") and "\n" not in p for p in problems)


def test_bad_masks_each_give_their_sentence(good, tmp_path):
    _, _, _, mask = good
    grey = mask.copy()
    grey[100, 200] = 128
    outside = mask.copy()
    outside[300:320, 300:320] = 255
    full = mask.copy()
    full[80:208, 192:320] = 255
    no_mouth = mask.copy()
    no_mouth[160:208, 216:296] = 0
    cases = {
        "must be 512x512": _save(tmp_path, "small.png", mask[:100, :100], "RGB"),
        "without alpha": _save(tmp_path, "rgba.png", np.dstack([mask, np.full(mask.shape[:2], 255, np.uint8)]),
                               "RGBA"),
        "not binary": _save(tmp_path, "grey.png", grey, "RGB"),
        "no white inside the face region": _save(tmp_path, "black.png", np.zeros_like(mask), "RGB"),
        "white outside the face region": _save(tmp_path, "outside.png", outside, "RGB"),
        "covers almost the whole face region": _save(tmp_path, "full.png", full, "RGB"),
        "does not cover the mouth": _save(tmp_path, "no_mouth.png", no_mouth, "RGB"),
    }
    for expected, path in cases.items():
        problems = check_mask(path)
        assert any(expected in p for p in problems), (expected, problems)


def test_cli_check_and_build_refuse_bad_inputs(good, tmp_path):
    image, mask, rgba, _ = good
    rgb = _save(tmp_path, "rgb.png", rgba[..., :3].copy(), "RGB")
    ok = subprocess.run([sys.executable, "-m", "distiller.cli", "check", "--image", str(image), "--face-mask",
                         str(mask)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "distiller.cli", "check", "--image", str(rgb), "--face-mask",
                          str(image)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "has no transparency" in bad.stdout and "without alpha" in bad.stdout
    # build checks first: nothing is trained (or written) for unusable inputs.
    out = tmp_path / "student"
    built = subprocess.run([sys.executable, "-m", "distiller.cli", "build", "--out", str(out), "--image", str(rgb),
                            "--face-mask", str(mask)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 2 and "has no transparency" in built.stderr and not out.exists()

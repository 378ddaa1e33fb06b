"""Issue 15 item 5: `distiller check` reports every problem of a file, and a mask made for another character."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from distiller.check import check_image, check_inputs, check_mask
from tests.shared import FIXTURES, LAMBDA_00, LAMBDA_01, needs_fixtures


def test_a_small_rgb_image_reports_size_and_missing_alpha(tmp_path):
    p = tmp_path / "small.png"
    Image.fromarray(np.zeros((200, 300, 3), np.uint8), "RGB").save(p)
    problems = check_image(p)
    assert len(problems) == 2
    assert "300x200" in problems[0] and "512x512" in problems[0]
    assert "no transparency (mode RGB)" in problems[1]


def test_a_small_grey_mask_reports_size_mode_and_not_binary(tmp_path):
    p = tmp_path / "mask.png"
    Image.fromarray(np.full((200, 300), 128, np.uint8), "L").save(p)
    problems = check_mask(p)
    assert len(problems) == 3
    assert "300x200" in problems[0] and "mode L" in problems[1] and "not binary" in problems[2]


@needs_fixtures
def test_a_mask_made_for_another_character_is_reported():
    image = LAMBDA_00 / "character.png"
    own, other = FIXTURES / "images" / "lambda_00_face_mask.png", FIXTURES / "images" / "lambda_01_face_mask.png"
    assert check_inputs(image, own) == []
    assert check_inputs(LAMBDA_01 / "character.png", FIXTURES / "images" / "lambda_01_face_mask.png") == []
    problems = check_inputs(image, other)
    assert len(problems) == 1 and "seems made for another character" in problems[0]
    from typer.testing import CliRunner

    from distiller.cli import app

    r = CliRunner().invoke(app, ["check", "--image", str(image), "--face-mask", str(other)])
    assert r.exit_code != 0 and "another character" in r.output


def test_a_mask_moved_off_the_face_is_reported(tmp_path):
    """The demo character and its own mask pass; the same mask 32 rows lower does not."""
    from tha4bridge.demo import DemoPoser, demo_face_mask
    from tha4bridge.imaging import to_rgba8

    rgba = to_rgba8(DemoPoser(device="cpu").rest_image()[None])[0].numpy()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "character.png")
    face = (demo_face_mask()[0].numpy() * 255).astype(np.uint8)
    for name, top in (("good.png", 80), ("low.png", 112)):
        mask = np.zeros((512, 512, 3), np.uint8)
        mask[top:top + 128, 192:320] = face[..., None]
        mask[208:] = 0  # only the face region counts
        Image.fromarray(mask, "RGB").save(tmp_path / name)
    assert check_inputs(tmp_path / "character.png", tmp_path / "good.png") == []
    problems = check_inputs(tmp_path / "character.png", tmp_path / "low.png")
    assert any("seems made for another character or placed off the face" in p for p in problems), problems

"""Image conventions: PNG ↔ the official tensor, engine output, and the student's face crop."""
from __future__ import annotations

import numpy as np
from PIL import Image

from tests.shared import FIXTURES, LAMBDA_00, needs_fixtures
from tha4bridge.demo import DemoPoser
from tha4bridge.imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS, load_character_png, load_face_mask, to_rgba8
from tha4bridge.pose import NEUTRAL


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


def test_the_face_crop_is_128_square_in_the_upper_middle():
    assert (STUDENT_FACE_ROWS, STUDENT_FACE_COLS) == (slice(80, 208), slice(192, 320))


@needs_fixtures
def test_face_mask_is_the_red_channel_of_the_crop_four_times():
    png = FIXTURES / "images" / "lambda_00_face_mask.png"
    red = np.asarray(Image.open(png).convert("RGB"))[STUDENT_FACE_ROWS, STUDENT_FACE_COLS, 0] / 255.0
    mask = load_face_mask(png)
    assert mask.shape == (4, 128, 128) and set(np.unique(mask.numpy())) <= {0.0, 1.0}
    assert all(np.array_equal(mask[c].numpy(), red.astype(np.float32)) for c in range(4))

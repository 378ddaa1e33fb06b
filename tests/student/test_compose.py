"""The two halves of a frame: body_pass + compose_pass equal render bit for bit (exact; fast with one arrangement
and no masks), and fast's fused compose (the body outputs' combination in one buffer, the blend as one lerp)
equals the unfused arithmetic to float tolerance: max |difference| <= 1e-4 on the [-1, 1] scale, >= 90 dB."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tests.shared import needs_fixtures
from tests.student.util import random_poses
from tha4bridge.imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS, psnr
from tha4bridge.student import Levers, SirenRenderer
from tha4bridge.student.arithmetic import Arithmetic
from tha4bridge.student.network import ALPHA, COLOR_CHANGE, GRID_CHANGE


def fast_without_masks(poser) -> SirenRenderer:
    return SirenRenderer(poser.face_morpher, poser.body_morpher, poser.rest_image(), mode="fast", mask=False,
                         levers=Levers(band_rows=0), arithmetic=Arithmetic(torch.float32, "the test's"))


@needs_fixtures
def test_body_pass_plus_compose_pass_equals_render_bit_for_bit(exact):
    pose = exact.prepare(random_poses(1, seed=41))
    for r in (exact.renderer, fast_without_masks(exact)):
        want = r.render(pose).clone()
        got = r.compose_pass(pose, r.body_pass(pose))
        assert torch.equal(got, want), f"{r.mode}: body_pass + compose_pass differs from render"


@needs_fixtures
def test_fused_compose_equals_the_unfused_arithmetic(exact):
    r = fast_without_masks(exact)
    poses = exact.prepare(random_poses(2, seed=42))
    a, b = r.body_pass(poses[:1]), r.body_pass(poses[1:])
    d = (b - a) * 0.5
    s, c = 0.3, 0.2
    got = r.compose_pass(poses[:1], None, mix=[(a, 1.0 - s), (b, s), (d, c)]).clone()
    # The unfused arithmetic: y = A + s·(B − A) + c·D, paste, grid, warp, (1 − α)·warped + α·colour.
    with torch.inference_mode():
        y = a + s * (b - a) + c * d
        image = r.image[None].clone()
        image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = r.face(poses[:1], {}).permute(0, 3, 1, 2)
        warped = F.grid_sample(image, y[..., GRID_CHANGE] + r.base_grid, mode="bilinear", padding_mode="border",
                               align_corners=False).permute(0, 2, 3, 1)
        want = ((1 - y[..., ALPHA]) * warped + y[..., ALPHA] * y[..., COLOR_CHANGE]).permute(0, 3, 1, 2)
    assert float((got - want).abs().max()) <= 1e-4
    assert psnr(got[0], want[0]) >= 90.0
    # A mix of one body output with weight 1 is that body output, bit for bit.
    assert torch.equal(r.compose_pass(poses[:1], None, mix=[(a, 1.0)]).clone(), r.compose_pass(poses[:1], a))

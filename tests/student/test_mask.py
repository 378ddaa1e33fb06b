"""The visibility mask: masked frames equal the full computation on extreme and random poses (both fixture
students), everything outside the mask is exactly transparent, the mask grows from full frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.shared import LAMBDA_00, LAMBDA_01, needs_fixtures
from tests.student.util import official_poses, random_poses
from tha4bridge.imaging import psnr
from tha4bridge.pose import LOWER, NEUTRAL, ROTATION_INPUT, UPPER
from tha4bridge.student import SirenRenderer, StudentPoser
from tha4bridge.student.mask import FULL_EVERY, VisibilityMask, extreme_rotations


@needs_fixtures
@pytest.mark.parametrize("folder", [LAMBDA_00, LAMBDA_01], ids=["lambda_00", "lambda_01"])
def test_masked_frames_equal_the_full_computation(folder):
    poser = StudentPoser(folder, device="cpu", mode="exact")
    full = poser.renderer
    masked = SirenRenderer(poser.face_morpher, poser.body_morpher, poser.rest_image(), mask=True)
    assert masked.mask is not None
    # Not the calibration poses: rotations alone at their limits (official poses 40, 42, 44: head_x, neck_z,
    # body_z) and a random pose (every parameter drawn: the widest spread of shown pixels measured).
    poses = poser.prepare(np.concatenate([official_poses()[40:45:2], random_poses(1, seed=21)]))
    masked.calibrate_mask()  # what the first render starts on a background thread, here at once
    masked.render(poses[:1])  # the first frame after calibration is a full one
    assert masked.mask.calibrated and masked.mask.frames == 1  # so the next render is a masked one
    out = masked.render(poses).clone()
    want = full.render(poses)
    worst = min(psnr(a, b) for a, b in zip(out, want))
    assert worst >= 45.0, f"{folder.name}: masked vs full {worst:.1f} dB"
    shown = masked.mask.at(512)
    assert 0.2 < float(shown.float().mean()) < 0.7  # a real saving, and the character inside it
    assert bool((out[:, :, ~shown] == -1.0).all()), "outside the mask the frame is exactly transparent"
    assert full.mask is None  # off in exact


@needs_fixtures
def test_fast_calibrates_in_the_background_and_renders_whole_frames_meanwhile():
    """The first frame is never slower for the mask: it is a whole frame, and calibration runs on a thread."""
    poser = StudentPoser(LAMBDA_00, device="cpu", mode="fast")
    r = poser.renderer
    assert r.mask is not None and not r.mask.calibrated and poser.describe()["visibility_mask"]
    first = poser.render(random_poses(1, seed=31)).clone()
    assert r.mask.frames == 0  # a whole frame, not counted as a masked one
    r.calibration.thread.join(timeout=240)
    assert r.mask.calibrated and not r.calibration.thread.is_alive()
    again = poser.render(random_poses(1, seed=31))
    assert psnr(again[0], first[0]) >= 45.0


def test_mask_grows_from_full_frames_and_only_grows():
    image = torch.full((4, 512, 512), -1.0)
    image[:, 200:300, 200:300] = 1.0
    m = VisibilityMask(image, [256, 512], margin=8)
    assert bool(m.shown[195, 250]) and not bool(m.shown[150, 250])
    before = m.index(512, 1).numel()
    frame = torch.full((1, 4, 512, 512), -1.0)
    frame[0, 3, 20, 30] = 0.0  # something shown far from the character
    assert m.grow(frame)
    assert bool(m.shown[20, 30]) and bool(m.shown[28, 38]) and m.index(512, 1).numel() > before
    assert not m.grow(frame)  # nothing new
    # The 256 level covers the bilinear sources of every masked 512 pixel.
    low = m.at(256)
    ys, xs = m.shown.nonzero(as_tuple=True)
    assert bool(low[(ys // 2 - 1).clamp(min=0), (xs // 2 - 1).clamp(min=0)].all())
    assert bool(low[(ys // 2 + 1).clamp(max=255), (xs // 2 + 1).clamp(max=255)].all())
    # Batch indices address each frame's rows.
    assert m.index(512, 2).numel() == 2 * m.index(512, 1).numel()


def test_calibration_poses_put_every_rotation_at_its_limits():
    poses = extreme_rotations()
    rot = poses[:, ROTATION_INPUT]
    assert np.array_equal(rot[0], LOWER[ROTATION_INPUT]) and np.array_equal(rot[1], UPPER[ROTATION_INPUT])
    assert ((rot == LOWER[ROTATION_INPUT]) | (rot == UPPER[ROTATION_INPUT])).all()
    assert np.array_equal(poses[:, :ROTATION_INPUT.start], np.tile(NEUTRAL, (4, 1))[:, :ROTATION_INPUT.start])


def test_one_full_frame_in_every_full_every():
    m = VisibilityMask(torch.full((4, 512, 512), -1.0), [256, 512])
    full = [m.wants_full_frame() for _ in range(2 * FULL_EVERY)]
    assert full[0] and full[FULL_EVERY] and sum(full) == 2

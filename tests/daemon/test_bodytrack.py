"""Two rates on the fixture students (exact arithmetic, so only the two-rate approximation is measured): a frame
composed from an estimated body against the frame of a fresh body pass of the same pose. Reuse across face-only
changes ≥ 40 dB (the eyelids ≥ 37 dB: lambda_01's body follows them), breathing between its two ends ≥ 45 dB, interpolation
between near head poses, extrapolation along the motion, and how each estimate says it was made."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.shared import LAMBDA_00, LAMBDA_01, needs_fixtures
from tha4bridge.daemon.bodytrack import DIRECTIONS, MAX_KEYS, BodyKey, BodyTrack
from tha4bridge.pose import BREATHING, INDEX, NEUTRAL
from tha4bridge.student import StudentPoser

pytestmark = needs_fixtures


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((((a - b) / 2) ** 2).mean())  # frames in [-1, 1]: PSNR on the [0, 1] scale
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


@pytest.fixture(scope="module", params=[LAMBDA_00, LAMBDA_01], ids=["lambda_00", "lambda_01"])
def poser(request):
    return StudentPoser(request.param, device="cpu", mode="exact", two_rate=True)


def pose(**values) -> np.ndarray:
    p = NEUTRAL.copy()
    for k, v in values.items():
        p[INDEX[k]] = v
    return p


def key(poser, p: np.ndarray) -> BodyKey:
    return BodyKey(p, poser.body_pass(torch.from_numpy(p[None])))


def shown(poser, p: np.ndarray, track: BodyTrack):
    est = track.estimate(p)
    return poser.compose_pass(torch.from_numpy(p[None]), None, mix=est.terms).clone(), est


def fresh(poser, p: np.ndarray) -> torch.Tensor:
    return poser.render(p).clone()


def test_two_passes_equal_one_render_bit_for_bit(poser):
    p = pose(head_y=0.3, mouth_aaa=0.7, breathing=0.4, eye_wink_left=1.0)
    track = BodyTrack()
    track.add(key(poser, p))
    frame, est = shown(poser, p, track)
    assert est.made == "fresh" and torch.equal(frame, fresh(poser, p))


def test_two_passes_equal_one_render_bit_for_bit_in_fast_mode():
    fast = StudentPoser(LAMBDA_00, device="cpu", mode="fast", mask=False)
    p = pose(head_x=-0.2, mouth_ooo=0.5, breathing=0.7)
    track = BodyTrack()
    track.add(key(fast, p))
    frame, est = shown(fast, p, track)
    assert est.made == "fresh" and torch.equal(frame, fresh(fast, p))


def directions(poser, q: np.ndarray) -> BodyTrack:
    track = BodyTrack()
    track.set_directions([key(poser, p) for p in BodyTrack.direction_poses(q)])
    assert not track.needs_directions(q) and track.needs_directions(pose(head_y=0.9))
    return track


@pytest.mark.slow  # body passes and renders of two students: ~10 s each on 2 cores
def test_face_only_changes_reuse_the_body(poser):
    base = pose(head_x=0.2, head_y=-0.3, breathing=0.5)
    track = BodyTrack()
    track.add(key(poser, base))
    for face in ({"mouth_aaa": 1.0}, {"eyebrow_angry_left": 1.0, "mouth_ooo": 0.8, "iris_rotation_y": 0.7}):
        p = base.copy()
        for k, v in face.items():
            p[INDEX[k]] = v
        frame, est = shown(poser, p, track)
        assert est.made == "reused" and est.residual == 0.0
        assert psnr(frame, fresh(poser, p)) >= 40.0, face


@pytest.mark.slow  # body passes and renders of two students: ~10 s each on 2 cores
def test_blinks_reuse_the_body_within_what_each_character_allows(poser):
    """The body reads the eyelids more than the rest of the face: reused across a blink lambda_00 measured 47–49 dB,
    lambda_01 37–38 dB (its body follows the eyelids, not linearly: bodytrack.py); bound below at 37 dB."""
    base = pose(head_x=0.2, head_y=-0.3, breathing=0.5, mouth_aaa=0.4)
    track = BodyTrack()
    track.add(key(poser, base))
    for left, right in ((1.0, 1.0), (0.5, 0.5), (1.0, 0.0)):
        p = base.copy()
        p[INDEX["eye_wink_left"]], p[INDEX["eye_wink_right"]] = left, right
        frame, est = shown(poser, p, track)
        assert est.made == "reused"
        assert psnr(frame, fresh(poser, p)) >= 37.0, (left, right)


@pytest.mark.slow  # body passes and renders of two students: ~10 s each on 2 cores
def test_breathing_between_its_two_ends(poser):
    base = pose(head_y=0.25, neck_z=-0.2, mouth_aaa=0.5)
    track = directions(poser, base)
    assert len(track) == 1 + len(DIRECTIONS)
    for b in (0.25, 0.5, 0.8):
        p = base.copy()
        p[BREATHING] = b
        frame, est = shown(poser, p, track)
        assert est.made == "interpolated" and est.body_pose[-1] == pytest.approx(b, abs=1e-5)
        assert psnr(frame, fresh(poser, p)) >= 45.0, b


@pytest.mark.slow  # body passes and renders of two students: ~10 s each on 2 cores
def test_between_and_beyond_two_head_poses(poser):
    a, b = pose(head_y=0.0, breathing=0.3), pose(head_y=0.1, breathing=0.3)
    track = BodyTrack()
    track.add(key(poser, a))
    track.add(key(poser, b))
    mid = pose(head_y=0.05, breathing=0.3)
    frame, est = shown(poser, mid, track)
    assert est.made == "interpolated" and est.body_pose[1] == pytest.approx(0.05, abs=1e-5)
    between = psnr(frame, fresh(poser, mid))
    assert between >= 45.0
    beyond = pose(head_y=0.15, breathing=0.3)  # half a step past the newest key, along the motion
    frame, est = shown(poser, beyond, track)
    assert est.made == "extrapolated" and est.body_pose[1] == pytest.approx(0.15, abs=1e-5)
    along = psnr(frame, fresh(poser, beyond))
    held = psnr(poser.compose_pass(torch.from_numpy(beyond[None]), None, mix=track.estimate(b).terms), fresh(poser, beyond))
    assert along > held  # extrapolating along the motion beats holding the newest key


def test_a_pose_off_the_keys_line_holds_the_nearest_key():
    track = BodyTrack()
    outputs = [torch.full((1, 2, 2, 7), float(i)) for i in range(3)]
    track.add(BodyKey(pose(head_y=0.0), outputs[0]))
    track.add(BodyKey(pose(head_y=0.1), outputs[1]))
    est = track.estimate(pose(head_x=0.5))  # far across the line head_y 0 → 0.1
    assert est.made == "reused" and len(est.terms) == 1 and est.residual == pytest.approx(0.5)
    assert BodyTrack().estimate(pose()) is None  # nothing before the first key


def test_keys_are_bounded_and_the_farthest_goes():
    track = BodyTrack()
    for i in range(MAX_KEYS + 3):
        track.add(BodyKey(pose(head_y=i / 10), torch.zeros(1, 1, 1, 7)), near=pose(head_y=i / 10))
    assert len(track) == MAX_KEYS
    assert track.covers(pose(head_y=(MAX_KEYS + 2) / 10), 1e-6) and not track.covers(pose(head_y=0.0), 0.05)

"""The face mask (fast mode): the masked face equals the whole face to >= 45 dB on held-out tracker-like,
single-shape and extreme poses of both fixture students (face crop and whole frame), exactly the neutral face
outside the mask, whole faces until calibrated, and no face mask in exact."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.shared import LAMBDA_00, LAMBDA_01, needs_fixtures
from tha4bridge.imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS, psnr
from tha4bridge.student import Levers, SirenRenderer, StudentPoser
from tha4bridge.student.arithmetic import Arithmetic
from tha4bridge.student.face_mask import FULL_EVERY, FaceMask, one_shape_per_group, single_shapes, tracker_like_poses
from tha4bridge.student.mask import extreme_rotations


def fast_renderer(poser: StudentPoser) -> SirenRenderer:
    """fast with the masks, float32 and no bands (one arrangement: nothing timed at load, the same bits each run)."""
    return SirenRenderer(poser.face_morpher, poser.body_morpher, poser.rest_image(), mode="fast", mask=True,
                         levers=Levers(band_rows=0), arithmetic=Arithmetic(torch.float32, "the test's"))


def held_out_poses() -> np.ndarray:
    """Not the calibration's seeds: tracker-like poses, one shape per group at its limit, single shapes at their
    limits (every 5th), and the extreme rotations with an expression on (the face ignores rotations)."""
    extreme = extreme_rotations()
    extreme[:, :39] = one_shape_per_group(len(extreme), 77)[:, :39]
    return np.concatenate([tracker_like_poses(8, 99), one_shape_per_group(4, 7), single_shapes()[1::5], extreme])


@needs_fixtures
# ~120 calibration faces each (10-30 s on 2 busy cores): lambda_01 runs with the slow tests (CI runs them too).
@pytest.mark.parametrize("folder", [LAMBDA_00, pytest.param(LAMBDA_01, marks=pytest.mark.slow)],
                         ids=["lambda_00", "lambda_01"])
def test_masked_faces_equal_whole_faces_to_45_db(folder):
    poser = StudentPoser(folder, device="cpu", mode="exact")
    r = fast_renderer(poser)
    assert r.face_mask is not None and not r.face_mask.calibrated
    r.calibrate_face_mask()  # what the first frame starts on the calibration thread, here at once
    fm = r.face_mask
    assert fm.calibrated and 0.3 < fm.fraction() < 1.0, f"keeps {fm.fraction():.2f} of the crop"
    print(f"{folder.name}: threshold {fm.threshold}, keeps {fm.fraction():.3f} of the crop")
    poses = torch.from_numpy(held_out_poses())
    with torch.inference_mode():
        whole = r.face(poses, {}).permute(0, 3, 1, 2).clone()
        masked = r.face(poses, {}, masked=True).permute(0, 3, 1, 2).clone()
    scores = [psnr(a, b) for a, b in zip(masked, whole)]
    assert min(scores) >= 45.0, f"{folder.name}: face crop worst {min(scores):.1f} dB (pose {int(np.argmin(scores))})"
    keep = fm.keep
    assert torch.equal(masked[:, :, ~keep], fm.constant[None, :, ~keep].expand(len(poses), -1, -1)), \
        "outside the mask: exactly the neutral face"
    assert torch.equal(masked[:, :, keep], whole[:, :, keep]), "inside: the whole computation's rows"
    # The whole frame, for the face's worst poses (a body pass each: a few).
    worst = np.argsort(scores)[:1]
    with torch.inference_mode():
        for k in worst:
            p = poses[k:k + 1]
            y = r.body(p, {"image": r.image[None].clone()})
            frames = []
            for face in (whole[k:k + 1], masked[k:k + 1]):
                image = r.image[None].clone()
                image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = face
                frames.append(r.compose(image, y, r._wins(None)[-1], {}).clone())
            frame_db = psnr(frames[0], frames[1])
            assert frame_db >= 45.0, f"{folder.name}: whole frame {frame_db:.1f} dB (pose {k})"


@needs_fixtures
def test_faces_are_whole_until_calibrated_then_one_in_full_every_grows_the_mask():
    poser = StudentPoser(LAMBDA_00, device="cpu", mode="exact")
    r = fast_renderer(poser)
    fm = r.face_mask
    r.calibration.start = lambda: None  # the thread would calibrate now; this test drives it by hand
    poses = torch.from_numpy(tracker_like_poses(3, 5))
    with torch.inference_mode():
        first = r._face_computed(poses[:1], {}).clone()
        assert not fm.calibrated and torch.equal(first, r.face(poses[:1], {}).permute(0, 3, 1, 2))
        fm.calibrate(torch.cat([r.face(torch.zeros(1, 45), {}), r.face(poses[:1], {})]).permute(0, 3, 1, 2))
        before = fm.keep.clone()
        fm.keep = torch.zeros_like(before)  # a mask that missed everything: the next whole face repairs it
        fm._index.clear()
        whole = r._face_computed(poses[1:2], {}).clone()  # faces == 0: this one is whole, and grows the mask
        assert fm.faces == 1 and bool(fm.keep.any()) and torch.equal(whole, r.face(poses[1:2], {}).permute(0, 3, 1, 2))
        grown = fm.keep.clone()
        masked = r._face_computed(poses[2:3], {})
        assert fm.faces == 2 and torch.equal(fm.keep, grown)  # a masked face does not grow it
        assert torch.equal(masked[0][:, ~grown], fm.constant[:, ~grown])
    assert [FaceMask().wants_full_face() for _ in range(1)] == [True] and FULL_EVERY > 1


@needs_fixtures
def test_no_face_mask_in_exact(exact):
    assert exact.renderer.face_mask is None
    r = SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(), mode="exact", mask=True)
    assert r.face_mask is None and r.mask is not None  # the visibility mask may be on; the face stays official


def test_grow_adds_what_differs_from_the_constant_dilated():
    fm = FaceMask(size=16, threshold=0.05, margin=1)  # given: not chosen
    faces = torch.zeros(3, 4, 16, 16)
    faces[1, 2, 5, 5] = 0.5
    fm.calibrate(faces)
    assert fm.calibrated and int(fm.keep.sum()) == 9 and bool(fm.keep[4:7, 4:7].all())
    assert fm.index(2).numel() == 18
    later = torch.zeros(1, 4, 16, 16)
    later[0, 0, 12, 3] = -0.04  # below the threshold
    assert not fm.grow(later)
    later[0, 0, 12, 3] = -0.06
    assert fm.grow(later) and bool(fm.keep[11:14, 2:5].all()) and fm.index(1).numel() == 18


def test_the_threshold_is_the_largest_that_reproduces_the_held_out_half():
    faces = torch.zeros(6, 4, 16, 16)
    faces[2, 0, 3, 3] = 0.5  # seen (even): any threshold keeps it
    faces[3, 0, 3, 5] = 0.5  # held out (odd), 2 px away: inside the mask only by the margin
    faces[4, 1, 10, 10] = 0.12  # seen, weak: kept by thresholds below 0.12 only
    faces[5, 1, 10, 12] = 0.3  # held out: reproduced only where the weak pixel was kept and dilated
    fm = FaceMask(size=16, margin=2)
    fm.calibrate(faces)
    assert fm.threshold == 0.1 and bool(fm.keep[10, 12]) and bool(fm.keep[3, 5])

"""SirenRenderer: `exact` faithful to the official outputs and to the plain modules, `fast` close to exact, each
lever an exact rearrangement, batches equal single frames, bad pose values repaired and counted."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.shared import needs_fixtures
from tests.student.util import official_outputs, official_poses, random_poses
from tha4bridge.imaging import psnr
from tha4bridge.pose import INDEX, NEUTRAL, pose_from_dict, sanitize
from tha4bridge.region import Region
from tha4bridge.student import Levers, SirenRenderer
from tha4bridge.student.arithmetic import Arithmetic


@pytest.mark.slow  # 52 exact frames: ~40 s on 2 cores
@needs_fixtures
def test_exact_matches_official_outputs_on_all_52_poses(exact):
    poses = official_poses()
    ref = official_outputs("blended")
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


@needs_fixtures
def test_fast_mode_stays_within_40_db_of_exact(exact):
    """The bfloat16 arrangement, forced: `fast` chooses it on AVX512-BF16/AMX CPUs (float32 elsewhere, the
    exact arithmetic). A bf16 GEMM without native support is slow, hence one frame."""
    fast = SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(), mode="fast",
                         arithmetic=Arithmetic(torch.bfloat16, "forced by the test"), levers=Levers(band_rows=0))
    pose = exact.prepare(random_poses(1, seed=2))
    worst = psnr(fast.render(pose)[0], exact.renderer.render(pose)[0])
    assert worst >= 40.0, f"bfloat16 fast vs exact: {worst:.1f} dB"


@needs_fixtures
# Each lever off at least once, with and without bands (1000 rows: bands that do not divide the frame).
@pytest.mark.parametrize("levers", [Levers(low_res_mixing=False, band_rows=0),
                                    Levers(low_res_mixing=True, band_rows=1000),
                                    Levers(low_res_mixing=False, band_rows=1000, face_cache=False)])
def test_each_lever_is_an_exact_rearrangement(exact, levers):
    """Switching levers off (as bench_student's ablation rows do) changes the arithmetic, not the image."""
    poses = exact.prepare(random_poses(1, seed=5))
    other = SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(), levers=levers)
    assert psnr(other.render(poses)[0], exact.renderer.render(poses)[0]) > 90.0


@needs_fixtures
def test_batch_equals_one_at_a_time(exact):
    poses = random_poses(3, seed=3)
    batched = exact.render(poses).clone()
    for k in range(3):
        assert psnr(exact.render(poses[k])[0], batched[k]) > 100.0


@needs_fixtures
def test_buffers_kept_for_the_three_latest_uses(exact):
    """Alternating single frames, a crop and a batch reuses all three sets of buffers (reallocating costs
    ~1 GB per call): a daemon shares one student between a whole-frame and a crop stream."""
    r = exact.renderer
    poses = exact.prepare(random_poses(2, seed=6))
    head = Region(160, 48, 192, 192)
    r.render(poses[:1]), r.render(poses[:1], head), r.render(poses)
    kept = {k: b["image"] for k, b in r.buffers.sets.items()}  # by (role, batch size, region)
    r.render(poses[:1]), r.render(poses[:1], head), r.render(poses)
    # Four sets are kept (one more: a body pass on its thread); the fourth here is an earlier test's.
    assert {("frame", 1, None), ("frame", 1, head), ("frame", 2, None)} <= set(r.buffers.sets) and len(r.buffers.sets) <= 4
    assert all(r.buffers.sets[k]["image"] is kept[k] for k in kept)


def test_mode_must_be_exact_or_fast():
    with pytest.raises(ValueError, match="mode must be 'exact' or 'fast'"):
        SirenRenderer(None, None, torch.zeros(4, 512, 512), mode="quick")


@needs_fixtures
def test_nan_and_out_of_range_are_fixed_and_counted(exact):
    first, second, head_x = INDEX["eyebrow_troubled_left"], INDEX["eyebrow_troubled_right"], INDEX["head_x"]
    before = exact.fixes.total
    p = np.array(NEUTRAL)
    p[first], p[second], p[head_x] = np.nan, 5.0, -np.inf
    out = exact.render(p).clone()
    assert torch.isfinite(out).all()
    assert exact.fixes.total - before == 3
    clean = p.copy()
    clean[first], clean[second], clean[head_x] = 0.0, 1.0, 0.0
    assert psnr(out[0], exact.render(clean)[0]) > 100.0


def test_sanitize_reports_each_fix():
    brow, head_y, breathing = INDEX["eyebrow_angry_right"], INDEX["head_y"], INDEX["breathing"]
    p = np.array(NEUTRAL)
    p[brow], p[head_y], p[breathing] = np.nan, 2.5, -0.5
    clean, fixes = sanitize(p)
    assert fixes.non_finite == 1 and fixes.out_of_range == 2
    assert clean[brow] == 0.0 and clean[head_y] == 1.0 and clean[breathing] == 0.0
    with pytest.raises(ValueError, match="unknown pose parameter 'eye_wink'"):
        pose_from_dict({"eye_wink": 1.0})


@needs_fixtures
def test_the_face_is_reused_only_while_its_parameters_repeat(exact):
    """Lever 8: a pose that changes only rotations and breathing pastes the last face again (the same tensor);
    one that changes a face parameter computes it anew. Both equal a renderer without the lever."""
    r = SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image())
    plain = SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(), levers=Levers(face_cache=False))
    p1 = random_poses(1, seed=8)
    p2, p3 = p1.copy(), p1.copy()
    p2[0, INDEX["head_x"]], p2[0, INDEX["breathing"]] = -p1[0, INDEX["head_x"]], 0.5  # the face's inputs unchanged
    p3[0, INDEX["eye_wink_left"]] = 1.0 - p1[0, INDEX["eye_wink_left"]]
    r.render(exact.prepare(p1))
    face = r._last_face[1]
    for p, reused in ((p2, True), (p3, False)):
        got = r.render(exact.prepare(p)).clone()
        assert (r._last_face[1] is face) == reused
        assert torch.equal(got, plain.render(exact.prepare(p))), "the reused face changed the frame"

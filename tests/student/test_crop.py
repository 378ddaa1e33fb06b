"""Crops (`render(pose, region)`, renderer lever 6): the crop's pixels are the whole frame's, at a cost
near the crop's area; a crop that does not fit is refused in one sentence."""
from __future__ import annotations

import numpy as np
import pytest

from tests.shared import needs_fixtures
from tests.student.util import random_poses
from tha4bridge.demo import DemoPoser
from tha4bridge.imaging import psnr
from tha4bridge.region import Region, RegionError
from tha4bridge.student import Levers, SirenRenderer
from tha4bridge.student.mask import extreme_rotations
from tha4bridge.student.windows import level_windows

# The head (a dialogue box's view), the corners and edges (where upsampling clamps), odd sizes and offsets,
# a single pixel, a frame less one pixel all round.
REGIONS = [Region(160, 48, 192, 192), Region(0, 0, 100, 77), Region(411, 300, 101, 212), Region(7, 9, 1, 1),
           Region(1, 1, 510, 510), Region(255, 0, 2, 512), Region(0, 333, 512, 3)]


@needs_fixtures
def test_crops_equal_the_whole_frame(exact):
    """≥ 60 dB is the bar; measured: identical except float32 summation order in a few wide crops."""
    poses = np.concatenate([random_poses(1, seed=11), extreme_rotations()[:1]])
    for pose in poses:
        whole = exact.render(pose).clone()
        for region in REGIONS:
            crop = exact.render(pose, region)
            assert crop.shape == (1, 4, region.h, region.w)
            err = float((crop - region.cut(whole)).abs().max())
            assert err < 1e-3, (region, err)
            if region.w * region.h > 1:
                assert psnr(crop[0], region.cut(whole)[0]) >= 60.0, region


@needs_fixtures
def test_crop_of_a_batch_and_without_the_levers(exact):
    poses = random_poses(2, seed=12)
    region = Region(37, 101, 150, 99)
    whole = exact.render(poses).clone()
    assert psnr(exact.render(poses, region), region.cut(whole)) >= 60.0
    plain = SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(),
                          levers=Levers(low_res_mixing=False))
    assert psnr(plain.render(exact.prepare(poses), region), region.cut(whole)) >= 60.0


@needs_fixtures
def test_a_crop_computes_in_proportion_to_its_area(exact):
    """The windows each level computes: the head crop's are a sixth or less of each level (the margin is a
    few low-res pixels), so its cost is the face morpher's plus about a sixth of the body's."""
    sizes = exact.renderer.sizes
    wins = level_windows(sizes, Region(160, 48, 192, 192))
    fractions = [w.w * w.h / s ** 2 for w, s in zip(wins, sizes)]
    assert fractions[-1] == pytest.approx(192 ** 2 / 512 ** 2)
    assert all(f < 0.17 for f in fractions), fractions
    assert [(w.w, w.h) for w in level_windows(sizes, None)] == [(s, s) for s in sizes]


def test_other_posers_cut_the_whole_frame_and_every_poser_checks_the_region():
    demo = DemoPoser()
    pose = np.zeros(45, np.float32)
    whole = demo.render(pose).clone()
    region = Region(100, 50, 64, 32)
    assert np.array_equal(demo.render(pose, region).numpy(), region.cut(whole).numpy())
    for bad, words in [(Region(500, 0, 100, 100), "does not fit inside the 512x512 frame"),
                       (Region(0, 0, 0, 10), "at least 1 pixel"), (Region(-1, 0, 10, 10), "does not fit")]:
        with pytest.raises(RegionError, match=words):
            demo.render(pose, bad)


@pytest.mark.parametrize("text, words", [("1,2,3", "four whole numbers"), ("a,b,c,d", "four whole numbers"),
                                         ("1.5,2,3,4", "four whole numbers")])
def test_region_parsing_refuses_in_one_sentence(text, words):
    with pytest.raises(RegionError, match=words):
        Region.parse(text)
    assert Region.parse(" 1, 2,3 ,4") == Region(1, 2, 3, 4)
    assert Region.from_value([1, 2, 3, 4]) == Region(1, 2, 3, 4)
    with pytest.raises(RegionError, match=r"\[x, y, w, h\]"):
        Region.from_value([1, 2, True, 4])

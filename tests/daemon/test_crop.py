"""`serve --region`: a stream that shows a crop of the frame. A real daemon with the same student twice, whole
and as its head; the crop's frames are the whole frame's pixels, and its ring and headers say where it lies."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests.daemon.util import Served, frame_matching
from tests.shared import LAMBDA_00, needs_fixtures
from tha4bridge.client import ControlError, FrameSubscriber
from tha4bridge.transport.ring import RingReader

pytestmark = needs_fixtures
HEAD = (160, 48, 192, 192)
POSE = {"breathing": 0.0, "mouth_aaa": 0.8, "head_x": 0.6, "eye_wink_left": 1.0}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = Served("--student", f"whole={LAMBDA_00}", "--student", f"head={LAMBDA_00}",
               "--region", "head=" + ",".join(map(str, HEAD)), "--idle-fps", "0.2",
               log_dir=tmp_path_factory.mktemp("crop"))
    yield d
    assert d.stop() == 0


def _frames_of_one_pose(d: Served) -> dict:
    """The newest control frame of each stream, retried until both show the same pose (a blink may fall
    between the two renders)."""
    with FrameSubscriber(d.frames) as sub:
        for _ in range(5):
            t = time.time()
            d.ctl.set_pose("*", POSE, hold=0, replace=True)
            got = {}
            while len(got) < 2:
                f = frame_matching(sub, lambda f: f.header["pose_source"] == "control" and f.header["t_pose"] >= t,
                                   timeout=120)
                got[f.stream] = f
            if got["whole"].header["pose"] == got["head"].header["pose"]:
                return got
    raise AssertionError("the two streams never showed the same pose")


def test_a_crop_stream_shows_the_whole_frames_pixels_and_says_where(served):
    got = _frames_of_one_pose(served)
    whole, head = got["whole"], got["head"]
    x, y, w, h = HEAD
    assert (head.header["width"], head.header["height"], head.header["stride"]) == (w, h, w * 4)
    assert head.region == HEAD and (head.header["full_width"], head.header["full_height"]) == (512, 512)
    assert whole.region is None and "region" not in whole.header  # whole frames keep the 1.1 header
    diff = np.abs(head.pixels.astype(int) - whole.pixels[y:y + h, x:x + w].astype(int))
    assert diff.max() <= 1, diff.max()  # RGBA8 of the same floats; 1 allows float32 summation order
    assert diff.mean() < 0.01
    reader = RingReader(head.header["path"])
    try:  # ring 1.1: the placement at offset 192
        r = reader.header
        assert (r["version_minor"], r["width"], r["height"]) == (1, w, h)
        assert (r["region_x"], r["region_y"], r["full_width"], r["full_height"]) == (x, y, 512, 512)
    finally:
        reader.close()
    streams = {s["name"]: s for s in served.ctl.streams()}
    assert streams["head"]["region"] == list(HEAD) and (streams["head"]["width"], streams["head"]["height"]) == (w, h)
    assert "region" not in streams["whole"] and streams["whole"]["width"] == 512


def test_load_with_a_region_and_refusals(served):
    s = served.ctl.load("demo", name="democrop", region=[0, 256, 512, 256])["stream"]
    try:
        assert (s["width"], s["height"], s["region"]) == (512, 256, [0, 256, 512, 256])
        with FrameSubscriber(served.frames, streams="democrop") as sub:
            f = frame_matching(sub, lambda f: f.stream == "democrop", timeout=60)
            assert f.pixels.shape == (256, 512, 4) and f.region == (0, 256, 512, 256)
    finally:
        served.ctl.unload("democrop")
    for region, words in [([500, 0, 100, 100], "does not fit inside the 512x512 frame"),
                          ("1,2,3", "four whole numbers"), ([0, 0, "a", 1], r"\[x, y, w, h\]")]:
        with pytest.raises(ControlError, match=words):
            served.ctl.load("demo", name="bad", region=region)
    assert {s["name"] for s in served.ctl.streams()} == {"whole", "head"}

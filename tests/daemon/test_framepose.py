"""A frame's pose (daemon/framepose.py): which base a stream shows (live tracker, control hold, the hub's idle
motion, neutral), breathing added there once, the layers in their order, and the clamp's counts. Real Stream,
ControlHold, Layers, Animator and TrackedPose (the hub's type); the clock is a fake one."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tha4bridge.animator import Animator, MotionConfig
from tha4bridge.daemon.framepose import FramePoses, base_view
from tha4bridge.daemon.streams import Stream
from tha4bridge.layers import Injection, Look
from tha4bridge.pose import BREATHING, INDEX, NEUTRAL, NUM_PARAMETERS
from tha4bridge.trackers.hub import TrackedPose

from .inproc import LIBRARY, T0, FakeClock, tracker_hub

MOUTH, HEAD = INDEX["mouth_aaa"], INDEX["head_x"]


def pose(**values) -> np.ndarray:
    p = np.zeros(NUM_PARAMETERS, np.float32)
    for k, v in values.items():
        p[INDEX[k]] = v
    return p


def stream() -> Stream:
    return Stream("s", "demo", poser=None, alpha="straight")


def hold(s: Stream, p: np.ndarray, keys, now: float, seconds: float, replace: bool = True) -> None:
    s.control.set(p, set(keys), now, seconds, replace)


LIVE = TrackedPose(pose(head_x=0.5), "vmc", T0 - 0.01, live=True)
IDLE = TrackedPose(pose(head_x=0.125), "idle", T0, live=False)


@pytest.fixture
def poses():
    return FramePoses(Animator(t0=T0), clock=FakeClock())


# --- the base ------------------------------------------------------------------------------------------------
def test_without_tracker_or_hold_neutral_shows(poses):
    v = poses.view(stream(), None, T0 + 1)
    assert (v.source, v.t_pose, v.breathes) == ("idle", T0, False) and v.version[0] == ("n", 0)
    assert np.array_equal(v.pose, NEUTRAL) and poses.started == T0  # started: the clock it was given


def test_a_live_tracker_drives_a_stream_without_a_hold(poses):
    v = poses.view(stream(), LIVE, T0)
    assert (v.source, v.t_pose, v.version[0]) == ("tracker:vmc", LIVE.received_at, ("t", LIVE.received_at))
    assert v.pose[HEAD] == 0.5
    newer = TrackedPose(LIVE.pose, "vmc", T0, live=True)
    assert poses.view(stream(), newer, T0).version != v.version  # a new packet: a new pose to render


def test_the_hubs_idle_motion_shows_when_nothing_else_does(poses):
    v = poses.view(stream(), IDLE, T0 + 5)
    assert (v.source, v.version[0], v.pose[HEAD]) == ("idle", ("idle",), 0.125)
    assert poses.view(stream(), TrackedPose(pose(head_x=0.25), "idle", T0 + 6, False), T0 + 6).version == v.version


def test_an_active_hold_wins_over_a_live_tracker_and_lapses_back_to_it(poses):
    s = stream()
    hold(s, pose(mouth_aaa=1.0), {"mouth_aaa"}, T0, 2.0)
    v = poses.view(s, LIVE, T0 + 1)
    assert (v.source, v.t_pose, v.version[0], v.pose[MOUTH]) == ("control", T0, ("c", 1), 1.0)
    assert poses.view(s, LIVE, T0 + 2).source == "tracker:vmc"  # the hold lapsed: the tracker takes over


def test_an_expired_hold_stays_while_no_tracker_is_live(poses):
    """A game's NPC keeps its expression: with the hub idle, or no hub, the lapsed control pose remains."""
    s = stream()
    hold(s, pose(mouth_aaa=1.0), {"mouth_aaa"}, T0, 2.0)
    for tracked in (IDLE, None):
        v = poses.view(s, tracked, T0 + 10)
        assert (v.source, v.pose[MOUTH]) == ("control", 1.0), tracked
    s.control.release()
    assert poses.view(s, IDLE, T0 + 10).source == "control"  # released, still the last control pose
    assert base_view(s, LIVE, T0 + 10, T0).source == "tracker:vmc"


def test_the_version_follows_the_layers(poses):
    s = stream()
    before = poses.view(s, None, T0).version
    s.layers.changed()
    assert poses.view(s, None, T0).version != before


# --- breathing -------------------------------------------------------------------------------------------------
def test_breathing_is_added_once_over_any_base(poses, tmp_path):
    now = T0 + 0.75  # a quarter breath in (20 a minute: 3 s)
    want = poses.animator.breathing(now)
    assert 0 < want < 1
    s = stream()
    tracked = TrackedPose(pose(breathing=0.9), "vmc", now, live=True)  # a tracker's breathing never counts
    p, _ = poses.compose(s, poses.view(s, tracked, now), now)
    assert p[BREATHING] == pytest.approx(want)
    hub = tracker_hub(tmp_path, poses.animator)  # the hub's idle motion carries no breathing of its own
    idle = hub.current()
    assert idle.pose[BREATHING] == 0.0
    p, _ = poses.compose(s, poses.view(s, idle, now), now)
    assert p[BREATHING] == pytest.approx(want)  # not twice
    report = {}
    poses.compose(s, poses.view(s, None, now), now, report)
    assert report["breathing"] == round(want, 4)


def test_a_control_pose_that_names_breathing_keeps_it(poses):
    now = T0 + 0.75
    s = stream()
    hold(s, pose(breathing=0.25), {"breathing"}, now, 0)
    v = poses.view(s, None, now)
    assert v.breathes and poses.compose(s, v, now)[0][BREATHING] == 0.25
    hold(s, pose(breathing=0.25, mouth_aaa=1.0), {"mouth_aaa"}, now, 0, replace=False)  # merged: still named
    assert poses.compose(s, poses.view(s, None, now), now)[0][BREATHING] == 0.25
    hold(s, pose(breathing=0.25, mouth_aaa=1.0), {"mouth_aaa"}, now, 0, replace=True)  # replaced: not named
    assert poses.compose(s, poses.view(s, None, now), now)[0][BREATHING] == pytest.approx(poses.animator.breathing(now))


def test_breathing_off():
    poses = FramePoses(Animator(MotionConfig(breathing_rate=0.0), t0=T0), clock=FakeClock())
    s = stream()
    assert poses.compose(s, poses.view(s, None, T0 + 0.75), T0 + 0.75)[0][BREATHING] == 0.0


# --- layers and the clamp ------------------------------------------------------------------------------------------
def test_the_layers_in_order_over_the_base(poses):
    s = stream()
    hold(s, pose(mouth_aaa=0.2), {"mouth_aaa"}, T0, 0)
    s.layers.expression.set(Look.of("joy", LIBRARY["joy"], 1.0), 0.0, None, T0)
    s.layers.sources["game"] = Injection({MOUTH: 0.9}, 1.0, "set", T0, math.inf)
    report = {}
    p, _ = poses.compose(s, poses.view(s, None, T0), T0, report)
    assert p[MOUTH] == pytest.approx(0.9) and report["base"] == "control"  # injected over the expression
    assert report["injected"]["sources"] == ["game"] and "mouth_aaa" in report["injected"]["params"]
    s.layers.talking.set_level(0.3, T0)
    p, _ = poses.compose(s, poses.view(s, None, T0), T0, report)
    assert p[MOUTH] == pytest.approx(0.3) and report["talking"]["mode"] == "level"  # talking over injected
    p, _ = poses.compose(s, poses.view(s, LIVE, T0), T0, report)  # a live tracker under an active hold: the hold wins
    assert report["base"] == "control"
    s.control.release()
    p, _ = poses.compose(s, poses.view(s, LIVE, T0), T0, report)
    assert report["base"] == "tracker:vmc" and p[MOUTH] == pytest.approx(0.9)  # the tracker's mouth wins talking
    s.layers.talking.over_tracker = True
    assert poses.compose(s, poses.view(s, LIVE, T0), T0)[0][MOUTH] == pytest.approx(0.3)


def test_sanitize_repairs_and_counts(poses):
    s = stream()
    hold(s, pose(mouth_aaa=np.nan, head_x=2.0), {"mouth_aaa", "head_x"}, T0, 0)
    p, fixes = poses.compose(s, poses.view(s, None, T0), T0)
    assert (fixes.non_finite, fixes.out_of_range) == (1, 1) and (p[MOUTH], p[HEAD]) == (0.0, 1.0)
    s.layers.sources["meter"] = Injection({INDEX["mouth_iii"]: 0.75}, 1.0, "add", T0, math.inf)
    s.layers.sources["boost"] = Injection({INDEX["mouth_iii"]: 0.75}, 1.0, "add", T0, math.inf)
    p, fixes = poses.compose(s, poses.view(s, None, T0), T0)
    assert fixes.out_of_range == 2 and p[INDEX["mouth_iii"]] == 1.0  # 1.5 from two added sources, clamped

"""The render scheduler (daemon/scheduler.py), one pass at a time on a fake clock: which stream renders when.

Real parts (tests/daemon/inproc.py): the demo poser, the StreamRegistry, FramePoses, a FrameSink on an inproc
ZeroMQ endpoint; `Rig.step()` is one `RenderScheduler._pass`, so nothing sleeps and no thread runs.
"""
from __future__ import annotations

import msgpack
import numpy as np
import pytest
import zmq

from tha4bridge.daemon.scheduler import UNWATCHED_INTERVAL, Pacing
from tha4bridge.pose import INDEX

from .inproc import T0, Rig, one_torch_thread, overlay, rig  # noqa: F401 (fixtures)

MOUTH = INDEX["mouth_aaa"]


@pytest.fixture
def make(one_torch_thread):  # noqa: F811
    rigs = []

    def build(**kw) -> Rig:
        rigs.append(Rig(**kw))
        return rigs[-1]

    yield build
    for r in rigs:
        r.close()


def test_a_new_stream_renders_at_once(rig):  # noqa: F811
    s = rig.open()
    assert s.pending, "a freshly opened stream should have a pose waiting"
    assert rig.step() == 0.0
    (header, pixels), = rig.log.frames
    assert (header["stream"], header["seq"], header["pose_source"], header["transport"]) == ("demo", 1, "idle", "inline")
    assert header["t_render_start"] == rig.clock.time()  # the scheduler's clock, not the machine's
    assert pixels.shape == (512, 512, 4) and pixels.dtype == np.uint8
    assert not s.pending and s.seq == 1 and s.source == "idle" and s.last_render == rig.clock.monotonic()


def test_an_unchanged_pose_re_renders_only_after_the_idle_interval(make):
    rig = make(pacing=Pacing(idle_fps=8))  # every 0.125 s
    rig.open()
    rig.step()
    wait = rig.step()
    assert 0 < wait <= 0.02 and len(rig.log.frames) == 1  # nothing due: poll again soon (hold expiries)
    rig.clock.advance(0.125 - 1 / 64)
    rig.step()
    assert len(rig.log.frames) == 1, "an unchanged pose re-rendered before its idle interval"
    rig.clock.advance(1 / 64)
    assert rig.step() == 0.0 and len(rig.log.frames) == 2, "no idle re-render once the interval passed"
    assert rig.log.headers[1]["pose_source"] == "idle"


def test_idle_fps_zero_never_re_renders_an_unchanged_pose(make):
    rig = make(pacing=Pacing(idle_fps=0))
    rig.open()
    rig.step()
    rig.clock.advance(60.0)
    rig.step()
    assert len(rig.log.frames) == 1


def test_fps_caps_changed_poses_and_the_latest_pose_wins(make):
    rig = make(pacing=Pacing(fps=16, idle_fps=0))  # at most every 0.0625 s
    s = rig.open()
    rig.step()
    rig.streams.set_pose(["demo"], {"mouth_aaa": 0.25}, hold=0, replace=False)
    rig.streams.set_pose(["demo"], {"mouth_aaa": 0.5}, hold=0, replace=False)
    assert s.stats.superseded == 1, "the second pose should supersede the first one, still waiting"
    assert rig.scheduler.wake.is_set(), "set_pose should wake the render thread"
    rig.clock.advance(0.0625 - 1 / 64)
    rig.step()
    assert len(rig.log.frames) == 1, "a changed pose rendered faster than --fps"
    rig.clock.advance(1 / 64)
    rig.step()
    assert len(rig.log.frames) == 2, "a changed pose did not render once --fps allowed it"
    header = rig.log.headers[1]
    assert header["pose_source"] == "control" and header["pose"][MOUTH] == 0.5  # the latest pose only
    assert Pacing(fps=16, idle_fps=100).idle_interval == 0.0625  # --fps caps idle frames too


def test_two_streams_take_fair_turns_the_most_overdue_first(make):
    rig = make(pacing=Pacing(idle_fps=0), cost=1 / 64)
    rig.open("a")
    rig.open("b")
    rig.step()
    rig.step()
    assert rig.log.names() == ["a", "b"]  # both new: in the order they came
    rig.streams.set_pose(["a"], {"mouth_aaa": 0.1}, hold=0, replace=False)
    rig.step()  # a rendered last now; b waited longer
    rig.streams.set_pose(["a"], {"mouth_aaa": 0.2}, hold=0, replace=False)
    rig.streams.set_pose(["b"], {"mouth_aaa": 0.2}, hold=0, replace=False)
    rig.step()
    assert rig.log.names()[3] == "b", "the stream that waited longest should render first, not the first one listed"
    # a floods poses: b's one pose still gets the next turn after a's
    rig.streams.set_pose(["b"], {"mouth_aaa": 0.3}, hold=0, replace=False)
    for v in (0.3, 0.4, 0.5):
        rig.streams.set_pose(["a"], {"mouth_aaa": v}, hold=0, replace=False)
        rig.step()
    assert rig.log.names()[4:] == ["a", "b", "a"]


def test_the_due_time_grid_does_not_drift_by_the_render_time(make):
    # --idle-fps 8 with renders that take a quarter of the interval and wake-ups that come a little late: still
    # 8 frames a second, each within a wake-up of its place on the grid
    rig = make(pacing=Pacing(idle_fps=8), cost=1 / 32)
    rig.open()
    start = rig.clock.monotonic()
    for _ in range(1000):  # the render loop, its waits on the fake clock (bounded: a pass that neither
        if rig.clock.monotonic() >= start + 2.0 - 0.01:  # renders nor waits would spin forever)
            break
        wait = rig.step()
        rig.clock.advance(wait + 1 / 64 if wait > 0 else 0.0)  # each wake-up 16 ms late
    else:
        pytest.fail("1000 passes did not cover 2 s of the fake clock")
    starts = np.array([h["t_render_start"] for h in rig.log.headers])
    assert len(starts) == 16, f"{len(starts)} frames in 2 s at --idle-fps 8 (fewer: the render time drifts in)"
    late = starts - (starts[0] + 0.125 * np.arange(16))
    assert np.all(late > -1e-6) and np.all(late < 0.03), f"frames left the 0.125 s grid by {late.round(4)} s"


def test_after_a_stall_the_grid_restarts_instead_of_bursting(make):
    rig = make(pacing=Pacing(idle_fps=8))
    rig.open()
    rig.step()
    rig.clock.advance(1.0)  # eight intervals without a pass
    rig.step()
    rig.step()
    assert len(rig.log.frames) == 2, "a stall should give one catch-up frame, not a burst"
    rig.clock.advance(0.125)
    rig.step()
    assert len(rig.log.frames) == 3


def test_unwatched_streams_slow_down_and_a_new_subscriber_gets_a_frame_at_once(make):
    rig = make(pacing=Pacing(idle_fps=8), watching=0)
    rig.open()
    rig.step()
    rig.clock.advance(UNWATCHED_INTERVAL / 2)
    rig.streams.set_pose(["demo"], {"mouth_aaa": 1.0}, hold=0, replace=False)
    rig.step()
    assert len(rig.log.frames) == 1, "an unwatched stream rendered faster than UNWATCHED_INTERVAL"
    rig.clock.advance(UNWATCHED_INTERVAL / 2)
    rig.step()
    assert [h["pose_source"] for h in rig.log.headers] == ["idle", "control"]
    # a ZeroMQ subscriber arrives (real XPUB/SUB over inproc): a fresh frame now, then the full idle rate
    sub = rig.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(rig.endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"demo")
    assert rig.sink.publisher.sock.poll(5000, zmq.POLLIN), "the subscription did not reach the frame publisher in 5 s"
    rig.step()
    assert len(rig.log.frames) == 3 and rig.sink.subscribers == 1, "a new subscriber did not get a fresh frame at once"
    seqs = []
    for n in range(2):  # the cached last frame (late joiner), then the fresh one
        assert sub.poll(5000), f"frame {n + 1} of 2 did not reach the ZeroMQ subscriber within 5 s"
        topic, header, pixels = sub.recv_multipart()
        seqs.append(msgpack.unpackb(header)["seq"])
        assert topic == b"demo" and len(pixels) == 512 * 512 * 4
    assert seqs == [2, 3]
    rig.clock.advance(0.125)
    rig.step()
    assert len(rig.log.frames) == 4, "a watched stream should be back at --idle-fps"
    sub.close()


def test_a_retired_stream_is_closed_and_answered_on_the_next_pass(make):
    rig = make(pacing=Pacing(idle_fps=0))
    rig.open("a")
    rig.open("b")
    rig.step()
    rig.step()
    shared = rig.stream("b").poser
    replies = []
    rig.streams.unload("a", replies.append)
    assert rig.streams.names() == ["b"] and replies == [], "unload should answer only once the render thread closed it"
    assert rig.sink.describe("a")["transport"] == "inline"  # still open until the render thread closes it
    rig.step()
    assert replies == [{"ok": True, "stream": "a"}]
    with pytest.raises(KeyError):
        rig.sink.describe("a")
    assert rig.registry.poser_for("demo") is shared  # b still shows the model: kept
    rig.streams.unload("b", replies.append)
    rig.step()
    assert replies[-1] == {"ok": True, "stream": "b"} and rig.registry.poser_for("demo") is not shared  # freed
    assert rig.log.names() == ["a", "b"]


def _hold(rig, s, value: float, hold: float) -> None:
    """A control hold set on the fake clock (Streams.set_pose stamps holds with the machine's clock)."""
    pose = np.zeros(45, np.float32)
    pose[MOUTH] = value
    with rig.lock:
        s.control.set(pose, {"mouth_aaa"}, rig.clock.time(), hold=hold, replace=True)
        s.offer()


def test_a_control_hold_expiring_hands_the_stream_back_to_a_live_tracker(make, tmp_path):
    rig = make(pacing=Pacing(idle_fps=0), hub_dir=tmp_path)
    overlay(rig.hub, {"mouth_aaa": 0.25}, T0)  # a live tracker (the /tha4/ parameter overlay)
    s = rig.open()
    rig.step()
    _hold(rig, s, 1.0, hold=0.5)
    rig.step()
    rig.clock.advance(0.25)
    rig.step()
    assert [(h["pose_source"], h["pose"][MOUTH]) for h in rig.log.headers] == [
        ("tracker:osc-params", 0.25), ("control", 1.0)], "a control hold should win over a live tracker"
    rig.clock.advance(0.25)  # the hold ends: nobody announces it, the next pass sees it
    rig.step()
    assert len(rig.log.frames) == 3, "the stream was not handed back when its control hold expired"
    assert (rig.log.headers[2]["pose_source"], rig.log.headers[2]["pose"][MOUTH]) == ("tracker:osc-params", 0.25)


def test_without_a_live_tracker_an_expired_hold_keeps_its_pose(make):
    rig = make(pacing=Pacing(idle_fps=0))
    s = rig.open()
    rig.step()
    _hold(rig, s, 1.0, hold=0.5)
    rig.step()
    rig.clock.advance(1.0)
    rig.step()
    assert s.control.remaining(rig.clock.time()) is None  # expired...
    assert [(h["pose_source"], h["pose"][MOUTH]) for h in rig.log.headers] == [("idle", 0.0), ("control", 1.0)]
    # ...but nobody takes over (a game's NPC keeps its expression): no new frame, the control pose stays


def test_a_tracked_pose_is_offered_to_every_stream_not_held(make):
    rig = make(pacing=Pacing(idle_fps=0))
    a, b = rig.open("a"), rig.open("b")
    rig.streams.set_pose(["a"], {"mouth_aaa": 1.0}, hold=0, replace=False)
    rig.step()
    rig.step()
    rig.scheduler.wake.clear()
    rig.scheduler.on_tracked()
    assert (a.pending, b.pending) == (False, True) and rig.scheduler.wake.is_set()


def test_pose_fixes_count_once_per_arriving_pose(make):
    rig = make(pacing=Pacing(idle_fps=8))
    s = rig.open()
    rig.step()
    rig.streams.set_pose(["demo"], {"mouth_aaa": float("nan"), "head_x": 3.0}, hold=0, replace=False)
    rig.step()
    assert (s.stats.fixes.non_finite, s.stats.fixes.out_of_range) == (1, 1)
    header = rig.log.headers[1]
    assert (header["pose"][MOUTH], header["pose"][INDEX["head_x"]]) == (0.0, 1.0)  # repaired before the render
    rig.clock.advance(0.125)
    rig.step()
    assert len(rig.log.frames) == 3 and (s.stats.fixes.non_finite, s.stats.fixes.out_of_range) == (1, 1)


def test_layers_that_move_with_the_clock_re_render_at_their_own_rate(make):
    rig = make(pacing=Pacing(idle_fps=0))  # an unchanged pose never re-renders...
    s = rig.open()
    rig.step()
    with rig.lock, s.layers.lock:
        s.layers.talking.talk(True, rig.clock.time())  # ...but a talking mouth moves every 1/ANIMATED_FPS s
        s.layers.changed()
        s.offer()
    rig.step()
    rig.clock.advance(0.01)
    rig.step()
    assert len(rig.log.frames) == 2, "a talking mouth re-rendered before 1/ANIMATED_FPS s passed"
    rig.clock.advance(0.03)
    rig.step()
    assert len(rig.log.frames) == 3, "a talking mouth did not re-render after 1/ANIMATED_FPS s"

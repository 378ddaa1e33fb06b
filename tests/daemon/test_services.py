"""The daemon's services (daemon/services.py) through the real StreamRegistry: Streams (look-ups, poses, layers,
loads and unloads: every change takes the lock, marks the stream pending and wakes the render thread) and
Trackers (with a real, never started TrackerHub, and without one)."""
from __future__ import annotations

import math
import threading

import pytest

from tha4bridge.daemon.services import Trackers
from tha4bridge.layers import Injection
from tha4bridge.pose import INDEX
from tha4bridge.region import Region
from tha4bridge.transport.control import RequestError

from .inproc import T0, Rig, one_torch_thread, overlay, rig, tracker_hub  # noqa: F401 (fixtures)


def _refused(code: str, *words: str):
    """pytest.raises for a RequestError with `code` whose sentence contains `words`."""
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(RequestError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            self.ctx.__exit__(*exc)
            e = self.info.value
            assert e.code == code, f"code {e.code!r}, expected {code!r}: {e}"
            for w in words:
                assert w in str(e), f"{w!r} not in {str(e)!r}"
            assert "\n" not in str(e)
            return True
    return Check()


class Replies:
    """A deferred reply's receiver: `wait` returns it, or fails saying what did not come."""

    def __init__(self):
        self.got, self.event = [], threading.Event()

    def __call__(self, reply: dict) -> None:
        self.got.append(reply)
        self.event.set()

    def wait(self, what: str, timeout: float = 10.0) -> dict:
        assert self.event.wait(timeout), f"no reply to {what} within {timeout:g} s"
        return self.got[-1]


# --- reading ---------------------------------------------------------------------------------------------------
def test_open_starts_a_stream_marked_pending_and_wakes(rig):  # noqa: F811
    s = rig.open("a")
    assert rig.scheduler.wake.is_set() and s.pending and rig.streams.names() == ["a"]
    assert rig.streams.find("a") is s and rig.streams.find("b") is None
    info, = rig.streams.infos()
    assert {k: info[k] for k in ("name", "student", "kind", "width", "height", "alpha", "transport", "path")} == {
        "name": "a", "student": "demo", "kind": "DemoPoser", "width": 512, "height": 512, "alpha": "straight",
        "transport": "inline", "path": ""}


def test_open_with_a_region(rig):  # noqa: F811
    info = rig.open("crop", Region(16, 32, 64, 48)).info(rig.sink)
    assert (info["width"], info["height"], info["region"], info["full_width"]) == (64, 48, [16, 32, 64, 48], 512)
    assert rig.open("full", Region(0, 0, 512, 512)).region is None  # the whole frame is no crop
    with _refused("bad_request", "stream big's region", "does not fit inside the 512x512 frame"):
        rig.open("big", Region(500, 0, 64, 64))
    assert rig.streams.names() == ["crop", "full"]


def test_resolve(rig):  # noqa: F811
    with _refused("bad_request", "'stream'", "one of none"):
        rig.streams.resolve(None)
    rig.open("a")
    assert rig.streams.resolve(None) == ["a"]  # omitted: the only one
    rig.open("b")
    with _refused("bad_request", "say which stream", "a, b"):
        rig.streams.resolve(None)
    assert rig.streams.resolve("*", allow_all=True) == ["a", "b"]
    with _refused("unknown_stream", "'*'"):
        rig.streams.resolve("*")
    with _refused("unknown_stream", "'c'", "running: a, b"):
        rig.streams.resolve("c")
    with _refused("bad_request", "'stream' must be a string"):
        rig.streams.resolve(3)
    with _refused("bad_request", "'a'", "already running"):
        rig.open("a")
    with _refused("bad_request", "stream name"):
        rig.open("no spaces")


# --- poses -----------------------------------------------------------------------------------------------------
def test_set_pose_merges_holds_and_offers(rig):  # noqa: F811
    s = rig.open()
    rig.step()
    rig.scheduler.wake.clear()
    rig.streams.set_pose(["demo"], {"mouth_aaa": 0.5}, hold=0, replace=False)
    assert s.pending and rig.scheduler.wake.is_set()
    rig.streams.set_pose(["demo"], {"head_x": -0.5}, hold=2.0, replace=False)
    assert s.stats.superseded == 1
    got = rig.streams.pose("demo")
    assert got["source"] == "control" and got["pose"]["mouth_aaa"] == 0.5 and got["pose"]["head_x"] == -0.5
    assert s.control.keys == {"mouth_aaa", "head_x"} and 0.0 < got["hold_remaining"] <= 2.0
    rig.streams.set_pose(["demo"], {"head_x": 0.25}, hold=0, replace=True)  # over neutral, keys start again
    got = rig.streams.pose("demo")
    assert got["pose"]["mouth_aaa"] == 0.0 and got["pose"]["head_x"] == 0.25 and got["hold_remaining"] == -1.0
    assert s.control.keys == {"head_x"} and math.isinf(s.control.until)


def test_set_pose_is_all_or_nothing(rig):  # noqa: F811
    a = rig.open("a")
    with rig.lock:
        a.pending = False
    version = a.control.version
    with _refused("unknown_stream", "'gone'"):
        rig.streams.set_pose(["a", "gone"], {"mouth_aaa": 1.0}, hold=0, replace=False)
    assert a.control.version == version and not a.pending


def test_release(rig):  # noqa: F811
    s = rig.open()
    rig.streams.set_pose(["demo"], {"mouth_aaa": 1.0}, hold=0, replace=False)
    rig.streams.change_layers(["demo"], lambda layers, now: layers.sources.update(
        game=Injection({0: 1.0}, 1.0, "set", now, math.inf), meter=Injection({1: 1.0}, 1.0, "add", now, math.inf)))
    assert rig.streams.release(["demo"], "meter") == ["meter"]
    assert sorted(s.layers.sources) == ["game"] and s.control.remaining(rig.clock.time()) is not None
    assert rig.streams.release(["demo"], "nobody") == []
    with rig.lock:
        s.pending = False
    assert rig.streams.release(["demo"], None) == ["game"]  # the hold and every injection
    assert s.layers.sources == {} and s.control.until == 0.0 and s.pending


def test_change_layers_bumps_the_version_and_returns_when(rig):  # noqa: F811
    s = rig.open()
    before = s.layers.version
    at = rig.streams.change_layers(["demo"], lambda layers, now: layers.talking.set_level(0.5, now))
    assert s.layers.version == before + 1 and s.layers.talking.level_at == at and s.pending


def test_pose_and_stats(rig):  # noqa: F811
    rig.open()
    rig.step()
    got = rig.streams.pose("demo")
    assert got["stream"] == "demo" and got["source"] == "idle" and got["hold_remaining"] is None
    assert set(got["layers"]) >= {"base", "expression", "injected", "talking", "breathing"}
    assert len(got["pose"]) == 45
    stats = rig.streams.stats()["demo"]
    assert stats["frames"] == 1 and stats["seq"] == 1 and stats["layers"]["expression"] == "neutral"
    with _refused("unknown_stream", "'gone'"):
        rig.streams.pose("gone")


# --- loading and unloading -------------------------------------------------------------------------------------
def test_load_answers_from_its_own_thread(one_torch_thread):  # noqa: F811
    rig = Rig(region_of=lambda name: Region(0, 0, 128, 128) if name == "face" else None)
    try:
        replies = Replies()
        rig.streams.load("face", "demo", "premultiplied", None, replies)
        with _refused("bad_request", "'face'", "already running"):  # claimed at once, while it loads
            rig.streams.load("face", "demo", None, None, Replies())
        reply = replies.wait("load of the demo as 'face'")
        assert reply["ok"] and reply["stream"]["name"] == "face" and reply["stream"]["alpha"] == "premultiplied"
        assert reply["stream"]["region"] == [0, 0, 128, 128]  # serve's --region face=… applies
        assert rig.streams.find("face").pending
        failed = Replies()
        rig.streams.load("nothing", "/no/such/student", None, None, failed)
        reply = failed.wait("a load of a folder that does not exist")
        assert not reply["ok"] and reply["code"] == "load_failed" and "/no/such/student" in reply["error"]
        assert rig.streams.names() == ["face"]
        again = Replies()
        rig.streams.load("nothing", "demo", None, None, again)  # the failed load gave its name back
        assert again.wait("a second load under a name whose first load failed")["ok"]
    finally:
        rig.close()


def test_unload_answers_once_the_render_thread_closed_it(rig):  # noqa: F811
    rig.open("a")
    replies = Replies()
    rig.streams.unload("a", replies)
    assert rig.streams.names() == [] and replies.got == []
    for s, done in rig.registry.close_retired():  # what the render thread's next pass does first
        done(s)
    assert replies.got == [{"ok": True, "stream": "a"}]
    with pytest.raises(KeyError):
        rig.sink.describe("a")


# --- trackers --------------------------------------------------------------------------------------------------
def test_trackers_without_a_hub_refuse_in_one_sentence():
    t = Trackers(None)
    assert t.ports() == {} and t.stats() == {}
    for call in (t.calibrate, t.clear_calibration):
        with _refused("unavailable", "tracker input is off"):
            call()


def test_trackers_with_a_hub(tmp_path):
    t = Trackers(tracker_hub(tmp_path))
    assert t.ports() == {}  # never started: no receiver bound
    assert t.stats()["live_source"] is None and t.stats()["calibration_file"] == str(tmp_path / "calibration.json")
    with _refused("not_ready", "no tracker has delivered data yet"):
        t.calibrate()
    t.clear_calibration()


def test_set_pose_over_a_live_tracker_starts_from_the_tracked_pose(tmp_path, one_torch_thread):  # noqa: F811
    rig = Rig(hub_dir=tmp_path)
    try:
        overlay(rig.hub, {"head_x": 0.5}, T0)
        rig.open()
        rig.streams.set_pose(["demo"], {"mouth_aaa": 1.0}, hold=0, replace=False)
        pose = rig.streams.find("demo").control.pose
        assert (pose[INDEX["mouth_aaa"]], pose[INDEX["head_x"]]) == (1.0, 0.5)  # set over the tracked pose
    finally:
        rig.close()

"""The daemon's parts wired in-process for unit tests, as daemon.Daemon.start wires them, minus the sockets a
client would reach: a real FrameSink (inline transport) on an `inproc://` ZeroMQ endpoint, a real
StreamRegistry with the demo poser, a real Animator, FramePoses, RenderScheduler, Streams and Services.

The only stand-ins: `FakeClock` (time() and monotonic(), advanced by hand) and `FrameLog`, a frame-sink
listener (FrameSink.listeners' contract: `on_frame(header, pixels)`, `watchers()`) that records frames.
Drive the scheduler with `Rig.step()` (one `RenderScheduler._pass`): no render thread, no sleeps.
"""
from __future__ import annotations

import itertools
import os
import threading
import time

from pathlib import Path

import numpy as np
import pytest
import torch
import zmq

from tha4bridge.animator import Animator
from tha4bridge.daemon.framepose import FramePoses
from tha4bridge.daemon.scheduler import Pacing, RenderScheduler
from tha4bridge.daemon.services import Identity, Services, Streams, Trackers
from tha4bridge.daemon.streams import StreamRegistry
from tha4bridge.expressions import load_library
from tha4bridge.pose import INDEX, NUM_PARAMETERS
from tha4bridge.transport.sink import FrameSink

# The fake wall clock's start: the machine's time when the tests start, whole seconds, since a tracker hub reads
# the machine's clock for its idle motion (the animator's blink schedule runs from T0 to the moment asked).
T0 = float(int(time.time()))
MONO0 = 1024.0  # the fake monotonic clock's start; steps of 1/2^k stay exact
_ids = itertools.count()
LIBRARY = load_library()


class FakeClock:
    """time() and monotonic() that move only when `advance` is called."""

    def __init__(self, t: float = T0, mono: float = MONO0):
        self.t, self.mono = t, mono

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.mono

    def advance(self, dt: float) -> None:
        self.t += dt
        self.mono += dt


class FrameLog:
    """A frame-sink listener that records every published frame. `watching`: the viewers it reports (1: the
    scheduler renders at full rate; 0: as if nobody watched). `cost`: fake seconds each frame takes, added to
    the clock as the frame goes out (a render that is not instant)."""

    def __init__(self, clock: FakeClock, cost: float = 0.0, watching: int = 1):
        self.clock, self.cost, self.watching = clock, cost, watching
        self.frames: list[tuple[dict, object]] = []

    def on_frame(self, header: dict, pixels) -> None:
        self.frames.append((dict(header), pixels))
        self.clock.advance(self.cost)

    def watchers(self) -> int:
        return self.watching

    @property
    def headers(self) -> list[dict]:
        return [h for h, _ in self.frames]

    def names(self) -> list[str]:
        return [h["stream"] for h in self.headers]


def tracker_hub(folder, animator=None):
    """A real TrackerHub that is never started: no UDP socket. Feed it with `overlay` as its /tha4/ parameter
    receiver would."""
    from tha4bridge.trackers import TrackerConfig, TrackerHub

    cfg = TrackerConfig(vmc_port=None, ifm_port=None, osc_param_port=None,
                        calibration_file=str(Path(folder) / "calibration.json"))
    return TrackerHub(cfg, animator=animator)


def overlay(hub, values: dict[str, float], t: float) -> None:
    """What the /tha4/ parameter receiver hands the hub (its `publish_overlay` callback): these values, received
    at `t`. With the default osc_param_timeout (0) the overlay stays live until replaced: a live tracker."""
    v, mask = np.zeros(NUM_PARAMETERS, np.float32), np.zeros(NUM_PARAMETERS, bool)
    for k, x in values.items():
        v[INDEX[k]], mask[INDEX[k]] = x, True
    hub._publish_overlay(v, mask, t)


class Rig:
    """One daemon's parts without its sockets and threads (close() when done)."""

    def __init__(self, pacing: Pacing | None = None, cost: float = 0.0, watching: int = 1, hub_dir=None,
                 region_of=lambda name: None):
        """`hub_dir`: a folder for a tracker hub's calibration file (a real TrackerHub, never started), or None
        for a daemon without trackers."""
        self.clock = FakeClock()
        self.ctx = zmq.Context()
        self.endpoint = f"inproc://tha4bridge-test-{os.getpid()}-{next(_ids)}"
        self.sink = FrameSink(self.endpoint, "inline", context=self.ctx)
        self.log = FrameLog(self.clock, cost, watching)
        self.sink.listeners.append(self.log)
        self.lock = threading.Lock()
        self.registry = StreamRegistry(self.sink, "cpu", "exact", self.lock)
        self.animator = Animator(t0=T0)
        self.hub = hub = tracker_hub(hub_dir, self.animator) if hub_dir is not None else None
        self.poses = FramePoses(self.animator, hub, clock=self.clock)
        self.scheduler = RenderScheduler(self.registry, self.sink, self.poses, pacing or Pacing(), clock=self.clock)
        self.streams = Streams(self.registry, self.sink, self.poses, self.scheduler.wake.set, "straight", region_of)
        self.stopped = threading.Event()
        self.services = Services(self.streams, Trackers(hub), LIBRARY,
                                 Identity("inproc://control", self.endpoint, "inline", T0),
                                 lambda: {"control": {"requests": 0}, "publisher": self.sink.stats()},
                                 self.stopped.set)

    def open(self, name: str = "demo", region=None):
        return self.streams.open(name, "demo", None, region)

    def step(self) -> float:
        """One scheduling pass (what the render thread does between waits)."""
        return self.scheduler._pass()

    def stream(self, name: str = "demo"):
        return self.streams.find(name)

    def close(self) -> None:
        self.registry.close()
        self.sink.close()
        self.ctx.destroy(linger=0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """The demo poser's many small operations run fastest on one thread (daemon.set_threads), above all on a
    busy 2-core machine; the previous setting comes back after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rig(one_torch_thread):
    r = Rig()
    yield r
    r.close()

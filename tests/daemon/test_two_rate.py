"""The two-rate daemon on a real student: with its body passes made deliberately slow, `fast` still shows frames at
the display rate (the render thread never waits for a body pass after the first frame) and the headers say how each
body was made; `exact` never reuses a body. The daemon's parts run on their real threads with the real clock; the
frames go out through a real FrameSink on an inproc ZeroMQ endpoint."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch
import zmq

from tests.shared import LAMBDA_00, needs_fixtures
from tha4bridge.animator import Animator
from tha4bridge.daemon.bodyworker import BodyWorker
from tha4bridge.daemon.framepose import FramePoses
from tha4bridge.daemon.scheduler import Pacing, RenderScheduler
from tha4bridge.daemon.services import Streams
from tha4bridge.daemon.streams import StreamRegistry
from tha4bridge.pose import INDEX
from tha4bridge.student import StudentPoser
from tha4bridge.transport.sink import FrameSink

pytestmark = needs_fixtures
BODY_DELAY = 1.5  # s added to every body pass: several display intervals


class SlowBody(StudentPoser):
    """lambda_00 whose body passes take BODY_DELAY s longer (the stand-in for a slow CPU)."""

    def body_pass(self, pose, region=None):
        time.sleep(BODY_DELAY)
        return super().body_pass(pose, region)


class Frames:
    """A frame-sink listener (transport/sink.py's contract) recording headers and when each went out."""

    def __init__(self):
        self.headers, self.arrived = [], threading.Condition()

    def watchers(self) -> int:
        return 1

    def on_frame(self, header, pixels) -> None:
        with self.arrived:
            self.headers.append(header)
            self.arrived.notify_all()

    def wait_for(self, n: int, timeout: float, what: str) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.headers) >= n, timeout):
                raise AssertionError(f"{what}: {len(self.headers)} frames within {timeout:.0f} s, wanted {n}")


class Parts:
    """The daemon's render path for one stream (daemon.Daemon.start wires the same parts, with sockets)."""

    def __init__(self, poser, fps: float):
        self.ctx = zmq.Context()
        self.sink = FrameSink(f"inproc://two-rate-{os.getpid()}-{id(self)}", "inline", context=self.ctx)
        self.frames = Frames()
        self.sink.listeners.append(self.frames)
        lock = threading.Lock()
        self.registry = StreamRegistry(self.sink, "cpu", poser.mode, lock)
        poses = FramePoses(Animator(t0=time.time()))
        self.scheduler = RenderScheduler(self.registry, self.sink, poses, Pacing(fps=fps))
        self.streams = Streams(self.registry, self.sink, poses, self.scheduler.wake.set)
        self.worker = BodyWorker(self.registry.all, lambda s, t: poses.predict(s, t, lock))
        self.stream = self.registry.add("s", "test", poser, "straight")
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.scheduler.run, args=(self.stop,), daemon=True),
                        threading.Thread(target=self.worker.run, args=(self.stop,), daemon=True)]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        self.scheduler.wake.set()
        for t in self.threads:
            t.join(30)
        self.sink.close()
        self.ctx.destroy(linger=0)


@pytest.fixture(scope="module")
def torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 2)  # serve's setting for a student
    yield
    torch.set_num_threads(before)


def test_fast_shows_frames_at_the_display_rate_while_body_passes_lag(torch_threads):
    fps = 10.0
    parts = Parts(SlowBody(LAMBDA_00, device="cpu", mode="fast", mask=False), fps)
    try:
        parts.frames.wait_for(1, 120, "the first frame (one body pass on the render thread)")
        start = len(parts.frames.headers)
        t_set = time.time()
        parts.streams.set_pose(["s"], {"head_y": 0.4, "mouth_aaa": 1.0}, hold=0.0, replace=False)
        t0 = time.monotonic()
        parts.frames.wait_for(start + 25, 60, "frames while body passes take over 1.5 s each")
        took = time.monotonic() - t0
        shown = parts.frames.headers[start:start + 25]
    finally:
        parts.close()
    gaps = np.diff([h["t_published"] for h in shown])
    passes = sum(parts.stream.stats.body_passes.values())
    # a frame that waited for a body pass would come ≥ BODY_DELAY after the one before it
    assert gaps.max() < BODY_DELAY, f"frame gaps: max {gaps.max():.2f} s, p50 {np.median(gaps):.2f} s"
    assert passes * BODY_DELAY <= took + 2 * BODY_DELAY, f"{passes} body passes in {took:.1f} s"
    assert len(shown) / took > 2 * passes / took, "no more frames than body passes"
    made = [h["body"]["made"] for h in shown]
    assert set(made) <= {"fresh", "reused", "interpolated", "extrapolated"} and "fresh" not in made[1:]
    assert {"reused", "interpolated"} & set(made), made
    assert all(len(h["body"]["pose"]) == 6 for h in shown)
    # each frame shows the new head pose, or (until a body pass for it lands) the body pose its keys stand for:
    # the header's pose always says which
    for h in shown:
        assert h["pose"][40] == pytest.approx(0.4) or h["pose"][39:45] == pytest.approx(h["body"]["pose"], abs=1e-4)
    after = [h for h in shown if h["t_render_start"] > t_set]  # a frame in flight at set_pose shows the old face
    assert len(after) >= 20 and all(h["pose"][INDEX["mouth_aaa"]] == 1.0 for h in after)  # the new face, at once


def test_exact_renders_every_frame_whole(torch_threads):
    parts = Parts(StudentPoser(LAMBDA_00, device="cpu", mode="exact"), 30.0)
    try:
        assert parts.stream.bodies is None
        parts.frames.wait_for(2, 120, "two exact frames")
    finally:
        parts.close()
    assert all("body" not in h for h in parts.frames.headers)
    assert not parts.stream.stats.body_passes

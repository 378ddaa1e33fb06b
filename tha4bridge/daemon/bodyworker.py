"""Body passes on a thread of their own, at whatever rate the CPU allows (the two-rate daemon, `fast` mode).

The render thread composes every shown frame from a stream's newest keys (bodytrack.py) and never waits here.
This thread decides which body outputs are worth a pass next, most urgent first, over every two-rate stream:
  (a stream's first key is the render thread's: its first frame waits for one body pass, once)
  1. the pose shown now is not explained by the keys (a new `set_pose`, a tracker's jump): a key at it;
  2. the directions D_j (breathing, the eyelids) are missing or were measured far from here: their poses;
  3. the pose shown now is more than KEY_STEP from every key: a key at it;
  4. the pose one body pass ahead (the clock decides the animator's sway, expression fades, hold expiries; a
     tracker holds its last packet) is more than KEY_STEP from every key: a key computed *ahead*, so that when
     the display gets there it interpolates between keys instead of extrapolating.
Tracked head motion is unknown in advance: the display extrapolates along the last two keys' line from the
pose it is shown (the tracker's pose of the moment) until the next key lands (bench_realtime measured holding,
interpolating a key late and extrapolating; see the README's fast-mode paragraph).

The thread runs torch on one thread: on two cores the render thread's compose passes keep one, body passes take
the other.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np
import torch

from .bodytrack import EXPLAINED, BodyKey
from .streams import Stream

log = logging.getLogger("tha4bridge.serve")

# Rotation units (summed) between keys: a display pose then lies within half of it of a key, well inside what
# interpolation explains (bodytrack.EXPLAINED); the idle sway needs a key every ~0.3 s at this spacing.
KEY_STEP = 0.04
IDLE_POLL = 0.05  # s between looks when nothing is due (the clock moves predictions on unannounced)


class BodyWorker:
    def __init__(self, streams: Callable[[], list[Stream]], predict: Callable[[Stream, float], np.ndarray | None],
                 clock=time, threads: int = 1):
        """`streams`: the running streams (the worker serves the two-rate ones); `predict(stream, t)`: the
        frame pose the stream will show at t (framepose.FramePoses.predict)."""
        self.streams, self.predict, self.clock, self.threads = streams, predict, clock, threads
        self.wake = threading.Event()
        self.pass_s = 0.5  # the last body passes' seconds (an average): how far ahead to look
        self.passes = 0

    # --- the policy ----------------------------------------------------------------------------------------
    def next_job(self) -> tuple[Stream, list[np.ndarray], str] | None:
        """(stream, poses to compute, why) of the most urgent body pass, or None when nothing is due."""
        now = self.clock.time()
        best = None
        for s in self.streams():
            if s.bodies is None:
                continue
            q = self.predict(s, now)
            if q is None:
                continue
            track = s.bodies
            if len(track) == 0:
                continue  # the render thread computes the first key with the stream's first frame
            jobs = []
            est = track.estimate(q)
            if est.residual > EXPLAINED:
                jobs.append((1, [q], "unexplained"))
            if track.needs_directions(q):
                jobs.append((2, track.direction_poses(q), "directions"))
            if not track.covers(q, KEY_STEP):
                jobs.append((3, [q], "now"))
            ahead = self.predict(s, now + self.pass_s)
            if ahead is not None and not track.covers(ahead, KEY_STEP):
                jobs.append((4, [ahead], "ahead"))
            for rank, poses, why in jobs:
                if best is None or rank < best[0]:
                    best = (rank, s, poses, why)
        return None if best is None else best[1:]

    def work_once(self) -> bool:
        """One body pass job if one is due; False when nothing was."""
        job = self.next_job()
        if job is None:
            return False
        s, poses, why = job
        t0 = self.clock.monotonic()
        keys = [BodyKey(p, s.poser.body_pass(torch.from_numpy(p[None]).to(s.poser.device), s.region)) for p in poses]
        took = (self.clock.monotonic() - t0) / len(poses)
        self.pass_s = 0.7 * self.pass_s + 0.3 * took if self.passes else took
        self.passes += len(poses)
        s.stats.body_pass(took * 1000.0, why)
        if why == "directions":
            s.bodies.set_directions(keys)
        else:
            s.bodies.add(keys[0], poses[0])
        return True

    # --- the thread ------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        # This thread's OpenMP team only (the render thread keeps its own). Normal priority: at the lowest one
        # (nice 19) a body pass took over 6 s beside other busy processes (a streamer's OBS and game are such).
        torch.set_num_threads(self.threads)
        while not stop.is_set():
            try:
                if not self.work_once():
                    self.wake.wait(IDLE_POLL)
                    self.wake.clear()
            except Exception:
                log.exception("body pass error (continuing)")
                time.sleep(0.1)


"""The render scheduler: which stream is due, the pose it should show, and the render loop that shows it.

Each pass takes the *latest* pose of every stream (latest wins: poses that arrived meanwhile were simply
overwritten) and renders the stream most overdue: one whose pose changed (no faster than --fps), or whose
idle period passed (the animator keeps an unchanged pose breathing). One render per pass, so the next
stream's pose is read again after this render, and streams take fair turns.

Two rates (a student in `fast` mode, `Stream.bodies`): every frame is a compose pass at the display rate
(--fps, default DISPLAY_FPS) from the body outputs that bodytrack.py estimates out of the newest keys; the body
passes run on the body worker's thread (bodyworker.py) and a shown frame never waits for one, except the
stream's very first. Everything else renders one whole frame per pass, as before.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..defaults import IDLE_FPS
from ..imaging import to_rgba8
from ..pose import BREATHING
from ..transport.sink import FrameSink, FrameTimes
from .bodytrack import EXPLAINED, ROTATION, BodyKey
from .framepose import FramePoses, Shown
from .streams import Stream, StreamRegistry

log = logging.getLogger("tha4bridge.serve")

UNWATCHED_INTERVAL = 1.0  # seconds between frames while no client subscribes to frames
DISPLAY_FPS = 30.0  # two-rate streams: compose passes per second when --fps does not say
# A tracked head's future is unknown: between body passes its frames use the nearest key and, beyond what that
# explains, hold the head back (bench_realtime, VTuber session, 20 s at 60 Hz, lambda_00: hold 36.4 / 44.7 dB
# min / median, interpolate 31.8 / 43.4, extrapolate along the motion 27.2 / 43.5 — it overshoots at turns —
# at the same ~43 % of frames held and the same latency). Clock-driven motion extrapolates (bodytrack's default).
TRACKED_STRATEGY = "hold"


@dataclass
class Pacing:
    fps: float | None = None  # never render a stream faster than this
    idle_fps: float = IDLE_FPS  # re-render an unchanged pose this often; 0 = never

    @property
    def min_interval(self) -> float:
        return 1.0 / self.fps if self.fps else 0.0

    @property
    def idle_interval(self) -> float:
        idle = 1.0 / self.idle_fps if self.idle_fps > 0 else math.inf
        return max(idle, self.min_interval)  # --fps caps idle frames too

    @property
    def display_interval(self) -> float:
        """A two-rate stream's frame interval, changed or not: its compose passes are cheap and breathing moves
        every frame."""
        return 1.0 / (self.fps or DISPLAY_FPS)


class RenderScheduler:
    def __init__(self, registry: StreamRegistry, sink: FrameSink, poses: FramePoses, pacing: Pacing, clock=time):
        """`clock`: anything with time() and monotonic() (the time module; tests pass a fake one)."""
        self.registry, self.sink, self.poses, self.pacing, self.clock = registry, sink, poses, pacing, clock
        self.wake = threading.Event()
        self._tracked = None  # the hub's pose of this pass (to log tracker connect/lost)
        self._due = (0.0, 0.0)  # (when the stream taken this pass was due, its interval), for _render
        self.tracked_strategy = TRACKED_STRATEGY

    def on_tracked(self) -> None:
        """Tracker hub listener (a receiver thread): a new tracked pose for every stream not held."""
        self.registry.offer_all(self.clock.time())
        self.wake.set()

    # --- the render thread -------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                idle_for = self._pass()
                if idle_for > 0:
                    self.wake.wait(idle_for)
            except Exception:
                log.exception("render loop error (continuing)")
                time.sleep(0.1)

    def _pass(self) -> float:
        """One scheduling pass; returns how long to wait for a wake-up (0 after a render)."""
        for s, done in self.registry.close_retired():
            log.info("stream %s: unloaded", s.name)
            done(s)
        if self.sink.poll_subscriptions():
            log.info("frame subscribers: %d", self.sink.subscribers)
            with self.registry.lock:
                for s in self.registry.streams.values():
                    s.last_render = -math.inf  # someone new is watching: a fresh frame now
        tracked = self.poses.tracked()
        self._log_tracker(tracked)
        due, next_due = self._most_overdue(tracked)
        if due is None:
            # Poll at 50 Hz at least: the hub's idle motion and hold expiries move with the clock, unannounced.
            return min(max(next_due - self.clock.monotonic(), 0.0), 0.02)
        self._render(*due)
        return 0.0

    def _most_overdue(self, tracked) -> tuple[tuple[Stream, Shown, bool] | None, float]:
        """(the most overdue stream, its view, whether its pose changed) or None, and when the next is due."""
        # Nobody watching: keep the last frame (and its cached header) fresh, but slowly, so an idle daemon does
        # not spend a core on frames no one sees.
        unwatched = self.sink.subscribers == 0
        mono, now = self.clock.monotonic(), self.clock.time()
        best, next_due = None, math.inf
        with self.registry.lock:
            self.wake.clear()
            for s in self.registry.streams.values():
                view = self.poses.view(s, tracked, now)
                changed = view.version != s.rendered_version
                if s.bodies is not None:
                    interval = self.pacing.display_interval
                else:
                    interval = self.pacing.min_interval if changed else self.pacing.idle_interval
                if unwatched:
                    interval = max(interval, UNWATCHED_INTERVAL)
                at = s.last_render + interval
                if mono < at:
                    next_due = min(next_due, at)
                elif best is None or at < best[0]:
                    best = (at, s, view, changed, interval)
            if best is None:
                return None, next_due
            self._due = (best[0], best[4])
            best[1].pending = False  # taken: a pose arriving from now on supersedes nothing yet
        return (best[1], best[2], best[3]), next_due

    def _render(self, s: Stream, view: Shown, changed: bool) -> None:
        now = self.clock.time()
        pose, fixes = self.poses.compose(s, view, now)
        if changed:
            s.stats.fixes.add(fixes)  # once per arriving pose, not once per idle re-render
        t_start, mono_start = self.clock.time(), self.clock.monotonic()
        pose_t = torch.from_numpy(pose[None]).to(s.poser.device)
        body = None
        if s.bodies is None:
            frames = s.poser.render_sanitized(pose_t, s.region)
        else:
            frames, body, pose = self._compose(s, pose, pose_t, view.source)
        rgba = to_rgba8(frames, premultiplied=s.alpha == "premultiplied").cpu()
        t_end = self.clock.time()
        times = FrameTimes(view.t_pose, t_start, t_end)
        seq, t_published = self.sink.publish(s.name, rgba[0].numpy(), pose, view.source, times, body)
        measured = changed and view.source != "idle"
        with self.registry.lock:
            s.seq, s.source, s.rendered_version = seq, view.source, view.version
            # The next frame is due one interval after this one was *due*, not after it ended: otherwise every
            # period also holds the render time (--idle-fps 10 with 25 ms renders gave 8 fps). After a stall
            # longer than an interval the grid restarts from now instead of bursting to catch up.
            due, interval = self._due
            s.last_render = due if mono_start - due < interval else mono_start
            s.stats.frame(view.t_pose, t_start, t_end, t_published, measured)

    def _compose(self, s: Stream, pose, pose_t: torch.Tensor, source: str) -> tuple[torch.Tensor, dict, np.ndarray]:
        """A two-rate frame: the body estimated from the stream's keys, then one compose pass; returns the frame,
        its header's `body` and the pose it shows. Before the first key exists (the stream's first frame) the body
        pass runs here, once. When the keys cannot explain the pose's body (a head jump: a new `set_pose`, a
        tracker turning away from the keys' line) the frame shows the body pose they can (the header's `pose`
        says so) and the face of now, until the body worker's next key lands: a head that arrives one body pass
        late, never a body that does not match its head (held, such a frame measured 31 dB for a 0.3 jump)."""
        strategy = self.tracked_strategy if source.startswith("tracker:") else None
        est = s.bodies.estimate(pose, strategy)
        if est is None:
            s.bodies.add(BodyKey(pose.copy(), s.poser.body_pass(pose_t, s.region)), pose)
            est = s.bodies.estimate(pose, strategy)
        body_pose = np.asarray(est.body_pose, np.float32)
        held = bool(est.residual > EXPLAINED or abs(float(pose[BREATHING]) - body_pose[-1]) > 1e-4)
        if held:
            pose = pose.copy()
            pose[ROTATION.start:BREATHING + 1] = body_pose
            pose_t = torch.from_numpy(pose[None]).to(s.poser.device)
        s.stats.body_made[est.made] += 1
        body = {"made": est.made, "pose": est.body_pose, "held": held}
        (y, w), *rest = est.terms
        frame = (s.poser.compose_pass(pose_t, y, s.region) if not rest and w == 1.0 else
                 s.poser.compose_pass(pose_t, None, s.region, mix=est.terms))  # the sum made in the compose's buffer
        return frame, body, pose

    def _log_tracker(self, tracked) -> None:
        was, self._tracked = self._tracked, tracked
        if tracked is None:
            return
        if tracked.live and (was is None or not was.live):
            log.info("tracker connected (%s)", tracked.source)
        elif was is not None and was.live and not tracked.live:
            log.info("tracker lost (%s); idle motion takes over", was.source)

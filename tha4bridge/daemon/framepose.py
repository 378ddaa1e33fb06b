"""A frame's pose, from its sources to the clamp: the one place it is assembled (protocols/control.md, "Layers").

    base   a live tracker (the hub's pose), else a control hold, else the hub's idle motion (or neutral)
    → layers   the stream's expression → injected → talking (layers.py)
    → breathing   the animator's clock, added here and nowhere else (a control pose that names `breathing`
                  keeps its own value: a still, reproducible frame)
    → clamp   pose.sanitize repairs NaN and out-of-range values and counts them

`FramePoses` answers for any stream at any moment (`now`, time.time()); it only reads, so the render thread,
`get_pose` and `set_pose` may all ask. Call `view` under the registry lock (it reads the stream's control hold),
`compose` outside it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..animator import Animator
from ..layers import apply_layers
from ..pose import BREATHING, NEUTRAL, PoseFixes, sanitize
from .streams import Stream


@dataclass
class Shown:
    """What a stream should show at one moment, before its layers."""

    pose: np.ndarray  # [45], before layers, breathing and sanitizing
    t_pose: float  # when it arrived (time.time())
    source: str  # the header's pose_source
    version: tuple  # changes exactly when a new pose arrived or the layers changed the frame
    breathes: bool  # the pose carries its own breathing (only a control pose that names `breathing`)


def base_view(s: Stream, tracked, now: float, started: float) -> Shown:
    """The base layer: a live tracker drives the stream unless a control hold is active; when no tracker is
    live, a control pose stays (a game's NPC keeps its expression); with neither, the hub's idle motion (or
    neutral) shows."""
    c = s.control
    if not c.active(now) and tracked is not None and (tracked.live or c.pose is None):
        pose = np.asarray(tracked.pose, dtype=np.float32)
        if tracked.live:
            return Shown(pose, tracked.received_at, f"tracker:{tracked.source}", ("t", tracked.received_at), False)
        # the hub's idle motion (blinks, sway) changes with the clock, not with packets
        return Shown(pose, tracked.received_at, "idle", ("idle",), False)
    if c.pose is not None:
        return Shown(c.pose, c.at, "control", ("c", c.version), "breathing" in c.keys)
    return Shown(NEUTRAL, started, "idle", ("n", 0), False)


class FramePoses:
    def __init__(self, animator: Animator, hub=None, clock=time):
        """`hub`: the TrackerHub, or None without trackers; `clock`: anything with time() (tests pass a fake)."""
        self.animator, self.hub, self.clock = animator, hub, clock
        self.started = clock.time()

    def tracked(self):
        """The hub's pose now (None without trackers); reading it has no side effects. Take it before the
        registry lock (the lock policy in daemon.py)."""
        return self.hub.current() if self.hub is not None else None

    def tracked_at(self, t: float):
        """The hub's pose as expected at the moment t: a live tracker holds its last packet (its future is
        unknown; asking the hub about t would ease it to idle); the idle motion runs on with the clock."""
        now = self.tracked()
        if now is None or now.live:
            return now
        return self.hub.current(at=t)

    def predict(self, s: Stream, t: float, lock) -> np.ndarray:
        """The (sanitized) pose stream `s` will show at the moment t, as far as the clock decides it (the
        two-rate daemon's body passes ahead); `lock`: the registry lock, taken here for the view."""
        tracked = self.tracked_at(t)
        with lock:
            view = self.view(s, tracked, t)
        return self.compose(s, view, t)[0]

    def view(self, s: Stream, tracked, now: float) -> Shown:
        """The base stream `s` shows at `now` (under the registry lock); its version also changes whenever the
        layers (expression, injected, talking) change the frame."""
        view = base_view(s, tracked, now, self.started)
        view.version = (view.version, s.layers.key(now))
        return view

    def compose(self, s: Stream, view: Shown, now: float, report: dict | None = None
                ) -> tuple[np.ndarray, PoseFixes]:
        """The pose a frame shows and what sanitizing repaired. `report` gets each layer's contribution."""
        p = apply_layers(view.pose, view.source, s.layers, now, report)
        if not view.breathes:
            p[BREATHING] = self.animator.breathing(now)
        if report is not None:
            report["breathing"] = round(float(p[BREATHING]), 4)
        return sanitize(p)

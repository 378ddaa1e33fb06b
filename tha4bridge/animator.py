"""Time-driven motion: breathing, blinks and sway — one clock for every pose the daemon shows.

The tracker hub asks it for the living idle (when no tracker delivers); the daemon's frame pose
(daemon/framepose.py) asks it for breathing, whoever drives the stream (trackers never send breathing). Nothing
else keeps a clock of its own, so a character breathes at one configured rate whoever drives it.
"""
from __future__ import annotations

import bisect
import math
import random
import threading
import time
from dataclasses import dataclass

import numpy as np

from .pose import INDEX, NEUTRAL


@dataclass
class MotionConfig:
    """The [idle] section of the tracker settings file carries these keys (trackers/settings.py)."""

    breathing_rate: float = 20.0  # breaths per minute (a 3 s cycle, the official default); 0 = no breathing
    blink_interval_min: float = 2.0  # s between idle blinks, uniformly random in [min, max]
    blink_interval_max: float = 6.0
    blink_duration: float = 0.2  # s, closed and open again
    sway: float = 0.06  # amplitude of the idle head sway, as a fraction of the head range
    sway_period: float = 7.0  # s
    seed: int | None = None

    def check(self) -> None:
        if not (math.isfinite(self.breathing_rate) and self.breathing_rate >= 0):
            raise ValueError("idle.breathing_rate must be >= 0 breaths per minute (0 = no breathing)")
        if not 0 < self.blink_interval_min <= self.blink_interval_max:
            raise ValueError("idle needs 0 < blink_interval_min <= blink_interval_max")
        if self.blink_duration <= 0 or self.sway_period <= 0:
            raise ValueError("idle needs blink_duration > 0 and sway_period > 0")


_WINK_L, _WINK_R = INDEX["eye_wink_left"], INDEX["eye_wink_right"]
_HX, _HY, _NZ, _BY, _BZ = (INDEX[n] for n in ("head_x", "head_y", "neck_z", "body_y", "body_z"))


class Animator:
    """Thread-safe: the hub (receiver and render threads) and the daemon (render, control) share one."""

    def __init__(self, cfg: MotionConfig | None = None, t0: float | None = None):
        self.cfg = cfg or MotionConfig()
        self.t0 = time.time() if t0 is None else t0
        self._lock = threading.Lock()  # the blink schedule and its random generator
        self._rng = random.Random(self.cfg.seed)
        self._starts = [self.t0 + self._interval()]  # blink start times, ascending, extended on demand
        self.phase = (self._rng.random() * 6.283, self._rng.random() * 6.283, self._rng.random() * 6.283)

    def _interval(self) -> float:
        return self._rng.uniform(self.cfg.blink_interval_min, self.cfg.blink_interval_max)

    def breathing(self, now: float) -> float:
        """0 (exhaled) → 1 (inhaled) → 0, a raised cosine; `now` is time.time()."""
        if self.cfg.breathing_rate <= 0:
            return 0.0
        period = 60.0 / self.cfg.breathing_rate
        frac = ((now - self.t0) % period) / period
        return (1.0 - math.cos(2.0 * math.pi * frac)) / 2.0

    def blink(self, now: float) -> float:
        """How closed the eyes are (0–1) for an idle blink at `now`; blinks come at random intervals.

        A function of the time alone (the schedule is drawn once, as far as asked), so any thread may ask
        in any order and two readers of the same moment see the same eyelid.
        """
        d = self.cfg.blink_duration
        with self._lock:
            starts = self._starts
            while starts[-1] <= now:
                starts.append(starts[-1] + d + self._interval())
            if starts[0] < now - 120.0 and len(starts) > 2:  # keep two minutes: nobody asks further back
                del starts[:bisect.bisect_left(starts, now - 120.0)]
            i = bisect.bisect_right(starts, now) - 1
            start = starts[i] if i >= 0 else None
        if start is None or now >= start + d:
            return 0.0
        return math.sin(math.pi * (now - start) / d)

    def idle_pose(self, now: float) -> np.ndarray:
        """The living idle: neutral face, random blinks, a slow head/body sway (breathing is added to every frame
        pose in one place, daemon/framepose.py)."""
        p = NEUTRAL.copy()
        p[_WINK_L] = p[_WINK_R] = self.blink(now)
        a, w, (f1, f2, f3) = self.cfg.sway, 2.0 * math.pi / self.cfg.sway_period, self.phase
        t = now - self.t0
        p[_HY] = a * math.sin(w * t + f1)
        p[_HX] = 0.6 * a * math.sin(0.73 * w * t + f2)
        p[_NZ] = 0.5 * a * math.sin(0.57 * w * t + f3)
        p[_BY], p[_BZ] = 0.5 * p[_HY], 0.5 * p[_NZ]
        return p

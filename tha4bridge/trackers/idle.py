"""The living idle: breathing (always), random blinks and a slight sway while no tracker delivers.

Also the tracking-lost envelope: hold the last tracked pose for `lost_after` seconds, then ease to idle over
`ease_out`, and ease back over `ease_in` when tracking returns. Everything is a function of the clock, so the
render loop sees motion even when no datagram arrives.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from ..pose import INDEX, NEUTRAL


@dataclass
class IdleConfig:
    breathing_rate: float = 20.0  # breaths per minute (a 3 s cycle, the official default)
    blink_interval_min: float = 2.0  # s between idle blinks, uniformly random in [min, max]
    blink_interval_max: float = 6.0
    blink_duration: float = 0.2  # s, closed and open again
    sway: float = 0.06  # amplitude of the idle head sway, as a fraction of the head range
    sway_period: float = 7.0  # s
    lost_after: float = 0.5  # s without fresh data before tracking counts as lost (the hold)
    ease_out: float = 1.0  # s to ease from the held pose to idle
    ease_in: float = 0.3  # s to ease from idle back to the tracker
    seed: int | None = None

    def check(self) -> None:
        if not self.breathing_rate > 0:
            raise ValueError("idle.breathing_rate must be > 0 (breaths per minute); breathing is always driven")
        if not 0 < self.blink_interval_min <= self.blink_interval_max:
            raise ValueError("idle needs 0 < blink_interval_min <= blink_interval_max")
        if self.blink_duration <= 0 or self.sway_period <= 0 or self.lost_after < 0:
            raise ValueError("idle needs blink_duration > 0, sway_period > 0, lost_after >= 0")
        if self.ease_out < 0 or self.ease_in < 0:
            raise ValueError("idle needs ease_out >= 0 and ease_in >= 0")


_WINK_L, _WINK_R = INDEX["eye_wink_left"], INDEX["eye_wink_right"]
_HX, _HY, _NZ, _BY, _BZ = (INDEX[n] for n in ("head_x", "head_y", "neck_z", "body_y", "body_z"))
BREATHING = INDEX["breathing"]


class IdleMotion:
    """Not thread-safe: the hub calls it under its lock."""

    def __init__(self, cfg: IdleConfig, t0: float):
        self.cfg, self.t0 = cfg, t0
        self.rng = random.Random(cfg.seed)
        self.next_blink = t0 + self._interval()
        self.phase = (self.rng.random() * 6.283, self.rng.random() * 6.283, self.rng.random() * 6.283)

    def _interval(self) -> float:
        return self.rng.uniform(self.cfg.blink_interval_min, self.cfg.blink_interval_max)

    def breathing(self, now: float) -> float:
        period = 60.0 / self.cfg.breathing_rate
        frac = ((now - self.t0) % period) / period
        return (1.0 - math.cos(2.0 * math.pi * frac)) / 2.0

    def blink(self, now: float) -> float:
        d = self.cfg.blink_duration
        while now >= self.next_blink + d:  # schedule forward (also after a long pause)
            self.next_blink += d + self._interval()
            if self.next_blink + d < now - 60.0:
                self.next_blink = now + self._interval()
        if now < self.next_blink:
            return 0.0
        return math.sin(math.pi * (now - self.next_blink) / d)

    def pose(self, now: float) -> np.ndarray:
        p = NEUTRAL.copy()
        b = self.blink(now)
        p[_WINK_L] = p[_WINK_R] = b
        a, w, (f1, f2, f3) = self.cfg.sway, 2.0 * math.pi / self.cfg.sway_period, self.phase
        t = now - self.t0
        p[_HY] = a * math.sin(w * t + f1)
        p[_HX] = 0.6 * a * math.sin(0.73 * w * t + f2)
        p[_NZ] = 0.5 * a * math.sin(0.57 * w * t + f3)
        p[_BY], p[_BZ] = 0.5 * p[_HY], 0.5 * p[_NZ]
        p[BREATHING] = self.breathing(now)
        return p


class LostEnvelope:
    """Weight of the idle pose: 0 while tracking, rising to 1 after the hold, eased both ways."""

    def __init__(self, cfg: IdleConfig):
        self.cfg = cfg
        self.level = 1.0  # start idle
        self.t: float | None = None

    def update(self, now: float, tracking: bool) -> float:
        dt = 0.0 if self.t is None else max(0.0, now - self.t)
        self.t = now
        if tracking:
            step = dt / self.cfg.ease_in if self.cfg.ease_in > 0 else 1.0
            self.level = max(0.0, self.level - step)
        else:
            step = dt / self.cfg.ease_out if self.cfg.ease_out > 0 else 1.0
            self.level = min(1.0, self.level + step)
        x = self.level
        return x * x * (3.0 - 2.0 * x)  # smoothstep: no velocity jump at either end

"""One Euro filter over the 45 parameters at once (Casiez et al. 2012): smooth when still, follow when fast.

Parameters listed in `snap` (blinks by default) pass through unfiltered: a blink smoothed is a blink missed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..pose import NUM_PARAMETERS
from .mapping import param_targets


@dataclass
class SmoothingConfig:
    enabled: bool = True
    min_cutoff: float = 1.5  # Hz; lower = smoother at rest, more lag
    beta: float = 0.5  # how fast the cutoff rises with speed (per unit/s)
    d_cutoff: float = 1.0  # Hz, for the speed estimate
    # Parameters (or stems naming both sides) that are never smoothed.
    snap: list[str] = field(default_factory=lambda: ["eye_wink", "eye_happy_wink", "eye_relaxed"])
    reset_after: float = 0.5  # s without samples: start over instead of smoothing across the gap

    def check(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError("smoothing needs min_cutoff > 0, d_cutoff > 0, beta >= 0")
        snap_mask(self.snap)


def snap_mask(names: list[str]) -> np.ndarray:
    m = np.zeros(NUM_PARAMETERS, dtype=bool)
    for n in names:
        m[param_targets(n, "smoothing.snap")] = True
    return m


class OneEuroFilter:
    def __init__(self, cfg: SmoothingConfig):
        self.cfg = cfg
        self.snap = snap_mask(cfg.snap)
        self.x: np.ndarray | None = None
        self.dx = np.zeros(NUM_PARAMETERS, dtype=np.float32)
        self.t = 0.0

    @staticmethod
    def _alpha(cutoff, dt: float):
        return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))

    def reset(self) -> None:
        self.x = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        dt = t - self.t
        if self.x is None or dt > self.cfg.reset_after or dt < 0:
            self.x, self.t = x.copy(), t
            self.dx[:] = 0.0
            return x
        dt = max(dt, 1e-3)  # datagrams arriving in the same millisecond
        c = self.cfg
        dx = (x - self.x) / dt
        self.dx += self._alpha(c.d_cutoff, dt) * (dx - self.dx)
        cutoff = c.min_cutoff + c.beta * np.abs(self.dx)
        a = 1.0 / (1.0 + 1.0 / (2.0 * math.pi * dt * cutoff))
        out = (self.x + a * (x - self.x)).astype(np.float32)
        out[self.snap] = x[self.snap]
        self.x, self.t = out, t
        return out

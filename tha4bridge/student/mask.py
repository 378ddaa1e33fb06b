"""Only the pixels that can show: a per-student visibility mask for the body morpher's 256 and 512 levels.

The body morpher is per pixel, so a pixel that stays transparent for every pose need not be computed.
The mask starts as the character's alpha dilated by `MARGIN` pixels. Before its first masked frame the
renderer computes full frames for `calibration_poses()` (every rotation at its limits: the largest warps;
and two random mixed poses) and adds what they show, dilated by `MARGIN`; the alpha alone is not enough
(a fixture student swings opaque pixels 48 px beyond its alpha). Then it only grows: the renderer computes
a full frame now and then (every `FULL_EVERY`-th) and adds what that frame shows, dilated by `MARGIN`
(16 px missed faint pixels of random poses: 43.6 dB on lambda_01; 32 px measured >= 95 dB). Outside the
mask the frame is exactly transparent (-1 everywhere, the official premultiplied convention).

At a lower level the mask is the 512 mask pooled to that size and dilated by one pixel, because bilinear
upsampling ×2 reads the 2×2 neighbours around each source position.
"""
from __future__ import annotations

import threading

import numpy as np
import torch
import torch.nn.functional as F

from ..pose import LOWER, NEUTRAL, ROTATION_INPUT, UPPER

MARGIN = 32  # pixels at 512 around anything seen or drawn
FULL_EVERY = 30  # frames: one full frame in this many grows the mask with what it shows
SHOWN = 1.0 / 1024  # alpha (0..1 scale) above which a pixel counts as shown


def extreme_rotations() -> np.ndarray:
    """[4, 45]: every rotation (head, neck, body, breathing) at its limits: all low, all high, alternating both ways."""
    lo, hi = LOWER[ROTATION_INPUT], UPPER[ROTATION_INPUT]
    even = np.arange(len(lo)) % 2 == 0
    poses = np.tile(np.asarray(NEUTRAL, np.float32), (4, 1))
    for k, rot in enumerate((lo, hi, np.where(even, lo, hi), np.where(even, hi, lo))):
        poses[k, ROTATION_INPUT] = rot
    return poses


def calibration_poses() -> np.ndarray:
    """[6, 45]: the extreme rotations, and two poses with every parameter drawn at random (fixed seed):
    strong mixed expressions make a student paint faint pixels (alpha ≈ 0.05) that rotations alone do not
    show, measured 37 dB without them on lambda_01."""
    rng = np.random.default_rng(1234)
    mixed = LOWER + (UPPER - LOWER) * rng.random((2, len(LOWER)))
    return np.concatenate([extreme_rotations(), mixed.astype(np.float32)])


def dilate(mask: torch.Tensor, r: int) -> torch.Tensor:
    """bool [H, W] → bool [H, W] grown by r pixels (a square; two separable max-pools)."""
    if r <= 0:
        return mask
    m = mask[None, None].float()
    m = F.max_pool2d(m, (1, 2 * r + 1), stride=1, padding=(0, r))
    m = F.max_pool2d(m, (2 * r + 1, 1), stride=1, padding=(r, 0))
    return m[0, 0] > 0


class VisibilityMask:
    """Thread-safe between one renderer's `index`/`wants_full_frame` and a calibration thread's `grow`."""

    def __init__(self, image: torch.Tensor, sizes: list[int], margin: int = MARGIN):
        """image: the character [4, S, S] (official convention, alpha in [-1, 1]); sizes: levels to mask."""
        self.size, self.sizes, self.margin = image.shape[-1], list(sizes), margin
        self._lock = threading.Lock()
        self.shown = dilate((image[3] + 1) / 2 > SHOWN, margin)
        self._index: dict[tuple[int, int], torch.Tensor] = {}
        self.frames = 0
        self.calibrated = False  # set once the extreme rotations' full frames were added

    def fraction(self) -> float:
        return float(self.shown.float().mean())

    def at(self, size: int) -> torch.Tensor:
        """bool [size, size]: the pixels to compute at that level."""
        if size == self.size:
            return self.shown
        f = self.size // size
        low = F.max_pool2d(self.shown[None, None].float(), f)[0, 0] > 0
        return dilate(low, 1)

    def index(self, size: int, n: int) -> torch.Tensor:
        """Flat row indices into an [n·size², C] activation matrix (cached until the mask grows)."""
        key = (size, n)
        with self._lock:
            if key not in self._index:
                flat = self.at(size).flatten().nonzero()[:, 0]
                self._index[key] = (flat[None] + size * size * torch.arange(n, device=flat.device)[:, None]).flatten()
            return self._index[key]

    def wants_full_frame(self) -> bool:
        """Counts a frame; True for every FULL_EVERY-th from the first, which the caller computes in full."""
        full = self.frames % FULL_EVERY == 0
        self.frames += 1
        return full

    def grow(self, frames: torch.Tensor) -> bool:
        """Add what full frames [N, 4, S, S] show (dilated); True if the mask grew."""
        seen = dilate(((frames[:, 3] + 1) / 2 > SHOWN).any(0), self.margin)
        with self._lock:
            new = seen & ~self.shown
            if not bool(new.any()):
                return False
            self.shown = self.shown | new  # a new tensor: an `at` in progress keeps reading the old one
            self._index.clear()
            return True

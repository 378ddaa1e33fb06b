"""Only the face pixels that can change: a per-student mask of the face morpher's 128×128 crop (fast mode).

The face morpher is per pixel, like the body morpher (`mask.py`): a pixel whose output hardly changes with
the face parameters need not be computed each frame. Outside the mask the renderer pastes one constant face,
the neutral pose's, computed once. The mask is every pixel whose output, over `face_calibration_poses()`,
differs from the neutral face by more than a threshold (the official [-1, 1] scale), dilated by `MARGIN`
pixels; the threshold is per character, the largest of `THRESHOLDS` whose mask made from half the calibration
faces reproduces the other half at >= `TARGET_DB`; the calibration runs on the renderer's background thread, and until it is done every face is
computed whole (the first frame is never slower). Then the mask only grows: one face computation in
`FULL_EVERY` is a whole one, and adds what differs from the constant (dilated), as `mask.py` does for the body.

What it buys depends on the character, and on the fixture students it is modest. Their face morphers are not
local: a single parameter at its limit moves 20–36 % of the crop by more than 0.05, a tracker-like pose
(a few shapes per group at random strengths) most of it by a little, and a pose with all 39 face parameters
drawn at random at once (no tracker or animator makes one) changes 92–100 % of the crop. Measured (float32
reference modules, `tests/student/test_face_mask.py`'s poses): a threshold of 0.05 and MARGIN 2 keep ≈ 85 %
(lambda_00) / 65 % (lambda_01) of the crop with ≥ 46 dB on the face crop for held-out tracker-like, single-
shape and extreme poses; 0.1 kept 76 % / 52 % but fell to 44 dB on lambda_01: hence a threshold per character. The calibration poses therefore include no poses
with every parameter drawn: a mask calibrated on them keeps the whole crop. Such a pose shows a wrong face
(12–34 dB on the crop) until the next whole face grows the mask, as a body pose unlike the visibility
mask's calibration does.
"""
from __future__ import annotations

import threading

import numpy as np
import torch

from ..pose import EYE, EYEBROW, IRIS_ROTATION, IRIS_SMALL, LOWER, MOUTH, NEUTRAL, UPPER
from .mask import dilate

THRESHOLDS = (0.2, 0.14, 0.1, 0.07, 0.05, 0.035)  # official scale ([-1, 1]): candidates, largest first
TARGET_DB = 50.0  # the chosen threshold's mask, from half the calibration faces, reproduces the other half this well
MARGIN = 2  # pixels of the 128 crop around every kept pixel
FULL_EVERY = 30  # face computations: one whole face in this many grows the mask with what it shows
PAIRED = (EYEBROW, EYE, IRIS_SMALL)  # groups whose parameters come in (left, right) pairs


def tracker_like_poses(n: int, seed: int, p_on: float = 0.3) -> np.ndarray:
    """[n, 45]: what a tracker or an animator sends: in each group, each shape on with probability `p_on` at a
    random strength (left and right equal 70 % of the time), the iris turned at random, rotations at random."""
    rng = np.random.default_rng(seed)
    poses = np.tile(np.asarray(NEUTRAL, np.float32), (n, 1))
    for k in range(n):
        for g in (*PAIRED, MOUTH):
            step = 2 if g in PAIRED else 1
            for i in range(g.start, g.stop, step):
                if rng.random() < p_on:
                    poses[k, i] = v = rng.random()
                    if step == 2:
                        poses[k, i + 1] = v if rng.random() < 0.7 else rng.random()
        poses[k, IRIS_ROTATION] = rng.uniform(-1.0, 1.0, 2)
    rot = slice(IRIS_ROTATION.stop, len(NEUTRAL))
    poses[:, rot] = LOWER[rot] + (UPPER[rot] - LOWER[rot]) * rng.random((n, rot.stop - rot.start))
    return poses


def single_shapes() -> np.ndarray:
    """[K, 45]: the neutral pose, then each face parameter alone at each of its non-zero limits."""
    poses = [np.asarray(NEUTRAL, np.float32)]
    for i in range(IRIS_ROTATION.stop):
        for v in (LOWER[i], UPPER[i]):
            if v != 0:
                p = poses[0].copy()
                p[i] = v
                poses.append(p)
    return np.stack(poses)


def one_shape_per_group(n: int, seed: int) -> np.ndarray:
    """[n, 45]: the extreme expressions: one shape per group at its limit (both sides), the iris at a corner."""
    rng = np.random.default_rng(seed)
    poses = np.tile(np.asarray(NEUTRAL, np.float32), (n, 1))
    for k in range(n):
        for g in PAIRED:
            i = g.start + 2 * int(rng.integers((g.stop - g.start) // 2))
            poses[k, i] = poses[k, i + 1] = 1.0
        poses[k, int(rng.integers(MOUTH.start, MOUTH.stop))] = 1.0
        poses[k, IRIS_ROTATION] = rng.choice([-1.0, 1.0], 2)
    return poses


def face_calibration_poses() -> np.ndarray:
    """[~120, 45]: the neutral pose first (its face is the constant), single shapes at their limits, one shape
    per group at its limit, and tracker-like poses (fixed seeds; the tests hold out other seeds)."""
    return np.concatenate([single_shapes(), one_shape_per_group(48, 3), tracker_like_poses(32, 1234)])


class FaceMask:
    """Thread-safe between one renderer's `index`/`wants_full_face` and a calibration thread's `calibrate`/`grow`."""

    def __init__(self, size: int = 128, threshold: float | None = None, margin: int = MARGIN):
        """`threshold`: None chooses it at calibration (`choose_threshold`)."""
        self.size, self.threshold, self.margin = size, threshold, margin
        self._lock = threading.Lock()
        self.constant: torch.Tensor | None = None  # [4, S, S]: the neutral face, pasted outside the mask
        self.keep: torch.Tensor | None = None  # bool [S, S]
        self._index: dict[int, torch.Tensor] = {}
        self.faces = 0
        self.calibrated = False

    def changed(self, faces: torch.Tensor) -> torch.Tensor:
        """bool [S, S]: pixels where any of `faces` [N, 4, S, S] differs from the constant by more than the
        threshold, dilated by the margin."""
        dev = (faces.float() - self.constant).abs().amax(dim=(0, 1))
        return dilate(dev > self.threshold, self.margin)

    def choose_threshold(self, faces: torch.Tensor) -> float:
        """The largest of THRESHOLDS whose mask, made from the even-numbered faces, reproduces every odd-numbered
        one at >= TARGET_DB (a held-out half: a margin over the 45 dB promised); the smallest if none does."""
        dev = (faces.float() - self.constant).abs()  # [K, 4, S, S]
        seen, held = dev[0::2].amax(dim=(0, 1)), dev[1::2]
        for th in THRESHOLDS:
            keep = dilate(seen > th, self.margin)
            mse = ((held * 0.5) ** 2 * ~keep).mean(dim=(1, 2, 3))  # the constant outside the mask, [0, 1] scale
            if float(mse.max()) <= 10.0 ** (-TARGET_DB / 10.0):
                return th
        return THRESHOLDS[-1]

    def calibrate(self, faces: torch.Tensor) -> None:
        """faces [K, 4, S, S] of `face_calibration_poses()` (the neutral face first)."""
        with self._lock:
            self.constant = faces[0].float().clone()
        if self.threshold is None:
            self.threshold = self.choose_threshold(faces)
        keep = self.changed(faces)
        with self._lock:
            self.keep = keep
            self._index.clear()
        self.calibrated = True

    def fraction(self) -> float:
        return float(self.keep.float().mean()) if self.keep is not None else 1.0

    def index(self, n: int) -> torch.Tensor:
        """Flat row indices into an [n·S², C] activation matrix (cached until the mask grows)."""
        with self._lock:
            if n not in self._index:
                flat = self.keep.flatten().nonzero()[:, 0]
                s2 = self.size * self.size
                self._index[n] = (flat[None] + s2 * torch.arange(n, device=flat.device)[:, None]).flatten()
            return self._index[n]

    def wants_full_face(self) -> bool:
        """Counts a face computation; True for every FULL_EVERY-th from the first, which the caller computes whole."""
        full = self.faces % FULL_EVERY == 0
        self.faces += 1
        return full

    def grow(self, faces: torch.Tensor) -> bool:
        """Add what whole faces [N, 4, S, S] change (dilated); True if the mask grew."""
        seen = self.changed(faces)
        with self._lock:
            new = seen & ~self.keep
            if not bool(new.any()):
                return False
            self.keep = self.keep | new
            self._index.clear()
            return True

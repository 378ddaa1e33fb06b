"""A stream's body outputs kept between body passes, and the estimate of the body outputs of any pose from them.

The body morpher's outputs (grid change, alpha, colour; renderer.SirenRenderer.body) are the expensive half of a
frame and change slowly with the pose: measured on the official lambda_00 against the exact render,
- reusing body outputs computed with other *face* parameters scores 43–46 dB (the body reads them only weakly);
- they are nearly linear in breathing: interpolating between breathing 0 and 1 scores ≥ 49 dB;
- between two head poses 0.1 apart, linear interpolation scores ≥ 50 dB (0.3 apart: 41–45 dB).
So a frame's body is estimated from a few *keys* (body outputs of known poses) in the space of the five rotation
parameters (head_x, head_y, neck_z, body_y, body_z):

    y(q) ≈ A + s·(B − A) + Σ_j c_j·D_j

A is the key nearest to q; B the key that, with A, best explains where q lies (s is q's position along A → B:
0..1 between them, outside it an extrapolation along the motion). D_j = y(p_j = 1) − y(p_j = 0) at one rotation
is the direction of a parameter the body follows linearly (DIRECTIONS: breathing), refreshed when the head moves
far from where it was measured, and c_j the part of q's p_j that A and B do not already carry. The eyelids were
tried as directions too and dropped: lambda_01's body follows them (a reused body scores 37–38 dB at a blink,
lambda_00's 47–49) but not linearly (a half-closed blink stayed at 37.7 dB with its direction). Each estimate says how it
was made (the frame header's `body`, protocols/frames.md).

Thread-safe: the body worker adds keys, the render thread estimates (its own lock, never held during a pass).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from ..pose import BREATHING, HEAD_NECK

ROTATION = slice(HEAD_NECK.start, BREATHING)  # head_x, head_y, neck_z, body_y, body_z: what keys are placed by
MAX_KEYS = 6  # 7.3 MB each for a whole frame; more keys than a body pass can renew do not help
SAME = 1e-4  # rotation distance below which two poses have the same body (float32 sliders, tracker noise)
MAX_RESIDUAL = 0.05  # q farther than this from the line A → B: that pair does not explain q
# A pose farther than this from what the keys explain is shown with the body pose they do explain (the daemon's
# scheduler): holding a body 0.1 away measured 40 dB, 0.3 away 31; interpolating keys 0.1 apart ≥ 50 dB.
EXPLAINED = 0.05
MAX_EXTRAPOLATION = 1.0  # at most one key spacing beyond a key (s in [-1, 2])
DIRECTIONS = (BREATHING,)  # parameters with a direction D_j
REFRESH = 0.3  # the D_j are renewed when the head is farther than this from where they were measured


@dataclass
class BodyKey:
    pose: np.ndarray  # [45] float32, sanitized: the pose the body pass computed
    outputs: torch.Tensor  # [1, h, w, 7] channels last

    @property
    def rotation(self) -> np.ndarray:
        return self.pose[ROTATION]


@dataclass
class Estimate:
    """What the body of a frame is made of: y = Σ weight·tensor (summed by the compose pass: `compose_pass(mix=)`),
    how (`made`), and the body pose it stands for."""

    terms: list[tuple[torch.Tensor, float]]
    made: str  # "fresh" (a key of exactly this pose), "reused", "interpolated", "extrapolated"
    body_pose: list[float]  # the six body parameters (rotations, breathing) the estimate represents
    residual: float  # how far q lies from what the keys can explain (rotation units): 0 when explained



STRATEGIES = ("extrapolate", "interpolate", "hold")


class BodyTrack:
    """The keys of one stream (one region of one student). `strategy` for a pose beyond the keys: "extrapolate"
    along the line of the two keys that explain it (the default), "interpolate" only between keys (clamped to
    the nearer), or "hold" the nearest key (bench_realtime.py measures the three on tracked head motion)."""

    def __init__(self, strategy: str = "extrapolate"):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        self.strategy = strategy
        self._lock = threading.Lock()
        self._keys: list[BodyKey] = []
        self._directions: tuple[np.ndarray, dict[int, torch.Tensor]] | None = None  # (measured at, {j: D_j})

    # --- the body worker's side ---------------------------------------------------------------------------
    def add(self, key: BodyKey, near: np.ndarray | None = None) -> None:
        """Keep `key`; over MAX_KEYS, drop the key farthest in rotation from `near` (the pose shown now)."""
        with self._lock:
            self._keys = [k for k in self._keys if not np.array_equal(k.pose, key.pose)] + [key]
            if len(self._keys) > MAX_KEYS:
                ref = key.rotation if near is None else near[ROTATION]
                far = max(range(len(self._keys) - 1), key=lambda i: np.abs(self._keys[i].rotation - ref).sum())
                del self._keys[far]

    @staticmethod
    def direction_poses(q: np.ndarray) -> list[np.ndarray]:
        """The poses whose body passes give the D_j at q's rotation: every DIRECTIONS parameter at 0, then each
        one at 1 in turn (set_directions takes their keys in this order)."""
        base = q.copy()
        base[list(DIRECTIONS)] = 0.0
        out = [base]
        for j in DIRECTIONS:
            p = base.copy()
            p[j] = 1.0
            out.append(p)
        return out

    def set_directions(self, keys: list[BodyKey]) -> None:
        """The D_j from the keys of `direction_poses` (all are kept as keys too)."""
        base, ends = keys[0], keys[1:]
        with self._lock:
            self._directions = (base.rotation.copy(),
                                {j: k.outputs - base.outputs for j, k in zip(DIRECTIONS, ends)})
        for k in keys:
            self.add(k, keys[0].pose)

    def clear(self) -> None:
        with self._lock:
            self._keys, self._directions = [], None

    def needs_directions(self, q: np.ndarray) -> bool:
        """Whether the D_j are missing or were measured too far from q's rotation."""
        with self._lock:
            return self._directions is None or np.abs(self._directions[0] - q[ROTATION]).max() > REFRESH

    def covers(self, q: np.ndarray, step: float) -> bool:
        """Whether some key lies within `step` of q (rotation units, summed like every distance here): no new key
        is worth a pass."""
        with self._lock:
            return any(np.abs(k.rotation - q[ROTATION]).sum() <= step for k in self._keys)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    # --- the render thread's side -------------------------------------------------------------------------
    def estimate(self, q: np.ndarray, strategy: str | None = None) -> Estimate | None:
        """The body of pose q ([45], sanitized) from the keys (`strategy`: this time, instead of the track's);
        None before the first key."""
        strategy = strategy or self.strategy
        with self._lock:
            keys, directions = list(self._keys), self._directions
        if not keys:
            return None
        r = q[ROTATION]
        dist = [float(np.abs(k.rotation - r).sum()) for k in keys]
        a_i = min(range(len(keys)), key=lambda i: (dist[i], -i))  # nearest; the newest among equals
        a = keys[a_i]
        s, b, residual = 0.0, None, dist[a_i]
        lo, hi = (-MAX_EXTRAPOLATION, 1.0 + MAX_EXTRAPOLATION) if strategy == "extrapolate" else (0.0, 1.0)
        if dist[a_i] > SAME and strategy != "hold":
            for k in keys:
                u = k.rotation - a.rotation
                uu = float(u @ u)
                if uu < SAME * SAME:
                    continue
                t = float((r - a.rotation) @ u) / uu
                t = min(max(t, lo), hi)
                res = float(np.abs(r - (a.rotation + t * u)).sum())
                if res < residual - 1e-9:
                    s, b, residual = t, k, res
            if b is not None and residual > MAX_RESIDUAL and residual > 0.5 * dist[a_i]:
                s, b, residual = 0.0, None, dist[a_i]  # the line does not explain q: hold the nearest key
        terms = [(a.outputs, 1.0 - s)] + ([(b.outputs, s)] if b is not None and s != 0.0 else [])
        carried = a.pose + (s * (b.pose - a.pose) if b is not None else 0.0)  # the pose A and B stand for
        if directions is not None:
            for j, d in directions[1].items():
                c = float(q[j] - carried[j])
                if abs(c) > 1e-6:
                    terms.append((d, c))
                    carried[j] = q[j]
        if b is not None and s != 0.0:
            made = "interpolated" if 0.0 <= s <= 1.0 else "extrapolated"
        elif len(terms) > 1:
            made = "interpolated"  # along breathing or an eyelid between its two ends
        else:
            made = "fresh" if np.array_equal(a.pose, q) else "reused"
        body = carried[ROTATION.start:BREATHING + 1]
        return Estimate(terms, made, [round(float(v), 5) for v in body], residual)

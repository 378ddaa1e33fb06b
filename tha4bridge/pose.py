"""The 45 THA4 pose parameters: names, order, ranges, and the clamping every renderer applies.

The order is the official pose-vector order (talking-head-anime-4-demo, `pose_parameters.py`); every
network slices the vector by position, so the order is part of the model format, not a convention.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np


def _lr(stem: str) -> list[str]:
    return [f"{stem}_left", f"{stem}_right"]


PARAMETER_NAMES: tuple[str, ...] = tuple(
    [n for s in ("troubled", "angry", "lowered", "raised", "happy", "serious") for n in _lr(f"eyebrow_{s}")]
    + [n for s in ("wink", "happy_wink", "surprised", "relaxed", "unimpressed", "raised_lower_eyelid")
       for n in _lr(f"eye_{s}")]
    + _lr("iris_small")
    + ["mouth_aaa", "mouth_iii", "mouth_uuu", "mouth_eee", "mouth_ooo", "mouth_delta"]
    + _lr("mouth_lowered_corner")
    + _lr("mouth_raised_corner")
    + ["mouth_smirk", "iris_rotation_x", "iris_rotation_y", "head_x", "head_y", "neck_z", "body_y", "body_z",
       "breathing"]
)
NUM_PARAMETERS = len(PARAMETER_NAMES)
assert NUM_PARAMETERS == 45
INDEX: dict[str, int] = {name: i for i, name in enumerate(PARAMETER_NAMES)}

# Rotations (iris, head, neck, body) are signed; everything else is a [0, 1] intensity.
_SIGNED = {"iris_rotation_x", "iris_rotation_y", "head_x", "head_y", "neck_z", "body_y", "body_z"}
LOWER = np.array([-1.0 if n in _SIGNED else 0.0 for n in PARAMETER_NAMES], dtype=np.float32)
UPPER = np.ones(NUM_PARAMETERS, dtype=np.float32)
# Neutral is all zeros (the official UI shows mouth_aaa = 1.0 as a slider default; the models' rest pose is 0).
NEUTRAL = np.zeros(NUM_PARAMETERS, dtype=np.float32)


def _span(first: str, last: str) -> slice:
    return slice(INDEX[first], INDEX[last] + 1)


# The vector's layout, written once (protocols/tha4_model.md, "The pose vector"). Everything that addresses
# parameters by position — trackers, the daemon, the teacher, the distiller, checks — imports these.
EYEBROW = _span("eyebrow_troubled_left", "eyebrow_serious_right")  # 0:12, the teacher's eyebrow combiner
EYE = _span("eye_wink_left", "eye_raised_lower_eyelid_right")  # 12:24
IRIS_SMALL = _span("iris_small_left", "iris_small_right")  # 24:26
MOUTH = _span("mouth_aaa", "mouth_smirk")  # 26:37
IRIS_ROTATION = _span("iris_rotation_x", "iris_rotation_y")  # 37:39
HEAD_NECK = _span("head_x", "neck_z")  # 39:42
BODY = _span("body_y", "body_z")  # 42:44
BREATHING = INDEX["breathing"]  # 44
# Which slice each network reads.
FACE_INPUT = slice(0, IRIS_ROTATION.stop)  # student face morpher: expressions and iris, 39 values
TEACHER_FACE_INPUT = slice(EYE.start, IRIS_ROTATION.stop)  # teacher face morpher: 27 values, no eyebrows
ROTATION_INPUT = slice(HEAD_NECK.start, NUM_PARAMETERS)  # teacher body morpher / upscaler: 6 values
# Groups a user names (tracker per-group sources, OSC): index arrays, since "iris" is two separate spans.
GROUPS: dict[str, np.ndarray] = {
    "brows": np.arange(EYEBROW.start, EYEBROW.stop),
    "eyes": np.arange(EYE.start, EYE.stop),
    "iris": np.r_[IRIS_SMALL.start:IRIS_SMALL.stop, IRIS_ROTATION.start:IRIS_ROTATION.stop],
    "mouth": np.arange(MOUTH.start, MOUTH.stop),
    "head": np.arange(HEAD_NECK.start, HEAD_NECK.stop),
    "body": np.arange(BODY.start, BODY.stop),
}
assert (FACE_INPUT, TEACHER_FACE_INPUT, ROTATION_INPUT) == (slice(0, 39), slice(12, 39), slice(39, 45))


@dataclass
class PoseFixes:
    """Counts of values the sanitizer had to repair; reported in stats, never raised."""

    non_finite: int = 0
    out_of_range: int = 0

    def add(self, other: "PoseFixes") -> None:
        self.non_finite += other.non_finite
        self.out_of_range += other.out_of_range

    @property
    def total(self) -> int:
        return self.non_finite + self.out_of_range


def sanitize(pose: np.ndarray) -> tuple[np.ndarray, PoseFixes]:
    """Return a float32 copy of `pose` ([45] or [N, 45]) with NaN/inf set to 0 and values clamped to range."""
    p = np.array(pose, dtype=np.float32, copy=True)
    if p.shape[-1] != NUM_PARAMETERS:
        raise ValueError(f"a pose has {NUM_PARAMETERS} values, got shape {tuple(p.shape)}")
    bad = ~np.isfinite(p)
    fixes = PoseFixes(non_finite=int(bad.sum()))
    p[bad] = 0.0
    clamped = np.clip(p, LOWER, UPPER)
    fixes.out_of_range = int((clamped != p).sum())
    return clamped, fixes


def pose_from_dict(values: Mapping[str, float], base: np.ndarray | None = None,
                   strict: bool = True) -> np.ndarray:
    """A [45] pose from {name: value}; names not given keep `base` (default neutral).

    With `strict`, an unknown name raises ValueError naming it (a typo should not silently do nothing).
    """
    p = np.array(NEUTRAL if base is None else base, dtype=np.float32, copy=True)
    for name, value in values.items():
        i = INDEX.get(name)
        if i is None:
            if strict:
                raise ValueError(f"unknown pose parameter {name!r}")
            continue
        p[i] = float(value)
    return p


def pose_to_dict(pose: Iterable[float]) -> dict[str, float]:
    return {name: float(v) for name, v in zip(PARAMETER_NAMES, pose)}

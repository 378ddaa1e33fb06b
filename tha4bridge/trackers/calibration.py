"""The user's neutral face and head, captured per source, stored as JSON, subtracted from then on.

Head angles are calibrated in degrees before the official saturating formulas (so a head held 5 degrees off
still reaches the full range on the other side). Face intensities are rescaled, (v - n) / (1 - n), so the
resting value maps to 0 and a full blink still reaches 1; iris rotation is shifted.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..pose import EYE, EYEBROW, INDEX, IRIS_ROTATION, MOUTH, NUM_PARAMETERS, PARAMETER_NAMES

DEFAULT_PATH = Path("~/.config/tha4bridge/calibration.json")

# Face parameters that are calibrated: intensities (rescaled) and iris rotation (shifted). The iris size is a
# constant of the mapping, and head, body and breathing are calibrated in degrees or not at all.
_RESCALED = np.r_[EYEBROW, EYE, MOUTH]
_SHIFTED = np.r_[IRIS_ROTATION]


@dataclass
class SourceCalibration:
    head_deg: tuple[float, float, float]  # iFacialMocap convention: X pitch, Y yaw, Z roll
    face: np.ndarray  # [45] the mapped resting face (head/body/breathing entries unused)

    def __post_init__(self):
        n = np.clip(np.asarray(self.face, dtype=np.float32)[_RESCALED], 0.0, 0.95)
        self._n = n
        self._scale = (1.0 / (1.0 - n)).astype(np.float32)
        self._shift = np.asarray(self.face, dtype=np.float32)[_SHIFTED]

    def apply_face(self, p: np.ndarray) -> None:
        """In place on a mapped [45] pose."""
        p[_RESCALED] = (p[_RESCALED] - self._n) * self._scale
        p[_SHIFTED] -= self._shift

    def to_json(self) -> dict:
        return {"head_deg": [round(float(v), 6) for v in self.head_deg],
                "face": {n: round(float(v), 6) for n, v in zip(PARAMETER_NAMES, self.face) if v}}

    @staticmethod
    def from_json(d: dict) -> "SourceCalibration":
        head = tuple(float(v) for v in d.get("head_deg", (0, 0, 0)))
        if len(head) != 3 or not all(np.isfinite(head)):
            raise ValueError("head_deg must be 3 finite numbers")
        face = np.zeros(NUM_PARAMETERS, dtype=np.float32)
        for n, v in dict(d.get("face", {})).items():
            if n not in INDEX:
                raise ValueError(f"unknown pose parameter {n!r}")
            face[INDEX[n]] = float(v)
        if not np.isfinite(face).all():
            raise ValueError("face values must be finite")
        return SourceCalibration(head, face)  # type: ignore[arg-type]


class CalibrationStore:
    """Per-source calibrations; receivers read `get(source)` per packet, the hub writes."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path).expanduser() if path else DEFAULT_PATH.expanduser()
        self._entries: dict[str, SourceCalibration] = {}
        self._lock = threading.Lock()

    def get(self, source: str) -> SourceCalibration | None:
        return self._entries.get(source)

    def load(self) -> None:
        """Read the file if it exists. A broken file is refused with one line naming it (ValueError)."""
        if not self.path.exists():
            return
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            entries = {str(k): SourceCalibration.from_json(v) for k, v in dict(doc.get("sources", {})).items()}
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise ValueError(f"{self.path}: not a tha4bridge calibration file ({e})") from None
        self._entries = entries

    def store(self, entries: dict[str, SourceCalibration]) -> dict:
        with self._lock:
            merged = dict(self._entries)
            merged.update(entries)
            doc = {"version": 1, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "sources": {k: v.to_json() for k, v in merged.items()}}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
            os.replace(tmp, self.path)
            self._entries = merged
        return doc

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

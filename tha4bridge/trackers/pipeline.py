"""Per source, the steps after parsing: calibration, mapping, gain/offset/swap, clamping, smoothing.

Runs on the receiver thread, once per datagram that changes the tracked state, so it stays in plain Python
and a handful of numpy calls.
"""
from __future__ import annotations

import numpy as np

from ..pose import BODY, HEAD_NECK, IRIS_ROTATION, IRIS_SMALL, LOWER, NUM_PARAMETERS, UPPER
from .arkit import ArkitConverter
from .calibration import CalibrationStore, SourceCalibration
from .filters import OneEuroFilter, SmoothingConfig
from .mapping import MappingConfig, gain_offset_arrays, head_params, swap_index, vrm_pose_matrix


class SourcePipeline:
    def __init__(self, source: str, mapping: MappingConfig, smoothing: SmoothingConfig,
                 calibration: CalibrationStore):
        self.source, self.cfg, self.calibration = source, mapping, calibration
        self.convert = ArkitConverter(mapping)
        self.vrm_matrix = vrm_pose_matrix(mapping)
        self.gain_offset = gain_offset_arrays(mapping)
        self.swap = swap_index() if mapping.swap_left_right else None
        self.filter = OneEuroFilter(smoothing) if smoothing.enabled else None
        # The last uncalibrated values, for `TrackerHub.calibrate()`.
        self.raw_head: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.raw_face: np.ndarray | list | None = None

    def _head(self, head_deg) -> tuple[float, float, float]:
        self.raw_head = head_deg
        cal = self.calibration.get(self.source)
        if cal is None:
            return head_deg
        c = cal.head_deg
        return head_deg[0] - c[0], head_deg[1] - c[1], head_deg[2] - c[2]

    def from_arkit(self, b, head_deg, t: float, iris: tuple[float, float] | None = None) -> np.ndarray:
        """`b`: 52 ARKit values; `head_deg`: iFacialMocap-style (X, Y, Z) degrees; `iris` overrides eyeLook*."""
        o = self.convert(b, self._head(head_deg))
        if iris is not None:
            o[IRIS_ROTATION] = iris
        self.raw_face = o
        return self._finish(np.array(o, dtype=np.float32), t)

    def from_vrm(self, weights: np.ndarray, head_deg, t: float, iris: tuple[float, float] | None = None
                 ) -> np.ndarray:
        """`weights`: values per `names.VRM_PRESETS` (a bone-only sender passes zeros)."""
        p = (weights @ self.vrm_matrix).astype(np.float32)
        hx, hy, nz = head_params(*self._head(head_deg), self.cfg)
        p[HEAD_NECK] = hx, hy, nz
        f = self.cfg.body_follow
        p[BODY] = hy * f, nz * f
        p[IRIS_SMALL] = self.cfg.iris_small_left, self.cfg.iris_small_right
        if iris is not None:
            p[IRIS_ROTATION] = iris
        self.raw_face = p.copy()
        return self._finish(p, t)

    def iris_from_eye_bones(self, pitch_deg: float, yaw_deg: float) -> tuple[float, float]:
        m = self.cfg.eye_bone_max_deg
        if m <= 0:
            return 0.0, 0.0
        x = max(-1.0, min(1.0, -pitch_deg / m * self.cfg.iris_sign_x))  # Unity +pitch looks down
        y = max(-1.0, min(1.0, yaw_deg / m * self.cfg.iris_sign_y))
        return x, y

    def _finish(self, p: np.ndarray, t: float) -> np.ndarray:
        cal: SourceCalibration | None = self.calibration.get(self.source)
        if cal is not None:
            cal.apply_face(p)
        if self.gain_offset is not None:
            g, o = self.gain_offset
            p = p * g + o
        # A source's pose leaves here finite and in range (the hub blends and passes it on as is): the mapping
        # is in range by construction for finite inputs, but gains, offsets and hostile packets are not.
        if not np.isfinite(p.sum()):
            p = np.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0)
        np.clip(p, LOWER, UPPER, out=p)
        if self.swap is not None:
            p = p[self.swap]
        if self.filter is not None:
            p = self.filter(p, t)
        return p

    def capture(self) -> SourceCalibration | None:
        """The current raw neutral (before calibration), or None if this source never delivered."""
        if self.raw_face is None:
            return None
        face = np.asarray(self.raw_face, dtype=np.float32).copy()
        if face.shape != (NUM_PARAMETERS,):
            return None
        return SourceCalibration(tuple(float(v) for v in self.raw_head), face)  # type: ignore[arg-type]

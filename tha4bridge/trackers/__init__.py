"""Tracker input: VMC/OSC and iFacialMocap receivers, the built-in webcam tracker (MediaPipe), the mapping to
the 45 THA4 parameters, calibration, smoothing and idle motion. The daemon uses `TrackerHub`."""
from .hub import TrackedPose, TrackerConfig, TrackerHub

__all__ = ["TrackerHub", "TrackerConfig", "TrackedPose"]

"""Smoothstep, the one easing curve: expression fades (layers.py) and the tracking-lost blend (trackers/idle.py)."""
from __future__ import annotations


def smoothstep(x: float) -> float:
    """0 → 1 with zero slope at both ends (clamped outside [0, 1]), so a blend neither starts nor lands with a jolt."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)

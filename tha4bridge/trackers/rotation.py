"""Quaternion maths for VMC bones: compose a bone chain, read Unity Euler angles, turn them into the
iFacialMocap head convention the mapping expects (protocols/trackers.md, "Rotations").

Plain Python on 4-tuples: a receiver composes at most five bones per change, and numpy's per-call cost is
larger than the arithmetic itself at this size.
"""
from __future__ import annotations

import math

Quat = tuple[float, float, float, float]  # (x, y, z, w), the order VMC sends
IDENTITY: Quat = (0.0, 0.0, 0.0, 1.0)


def quat_mul(a, b) -> Quat:
    """Hamilton product a*b of (x, y, z, w) quaternions (a is the parent)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz)


def chain(quats) -> Quat:
    """The rotation of the last bone relative to the first's parent: q0 * q1 * ... (parents first)."""
    q = IDENTITY
    for b in quats:
        q = quat_mul(q, b)
    return q


def quat_to_unity_euler(x: float, y: float, z: float, w: float) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a unit quaternion, in Unity's order (Z, then X, then Y)."""
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * x - y * z))))
    yaw = math.atan2(2.0 * (x * z + w * y), 1.0 - 2.0 * (x * x + y * y))
    roll = math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z))
    return math.degrees(pitch), math.degrees(yaw), math.degrees(roll)


def unity_to_ifm(pitch: float, yaw: float, roll: float) -> tuple[float, float, float]:
    """Unity head angles -> iFacialMocap's (X, Y, Z) degrees: yaw and roll change sign, pitch does not."""
    return pitch, -yaw, -roll

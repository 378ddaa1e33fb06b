"""rotation.py: quaternion products, bone chains, Unity's Euler order and the iFacialMocap signs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tha4bridge.trackers.rotation import IDENTITY, chain, quat_mul, quat_to_unity_euler, unity_to_ifm
from tests.trackers.util import quat_pitch, quat_yaw


def _axis(axis: str, deg: float) -> tuple[float, float, float, float]:
    h = math.radians(deg) / 2
    v = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}[axis]
    return (v[0] * math.sin(h), v[1] * math.sin(h), v[2] * math.sin(h), math.cos(h))


def _matrix(q) -> np.ndarray:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def test_single_axes_and_a_chain():
    assert quat_to_unity_euler(*quat_yaw(10.0))[1] == pytest.approx(10.0)
    assert quat_to_unity_euler(*quat_pitch(10.0))[0] == pytest.approx(10.0)
    assert quat_to_unity_euler(*_axis("z", 10.0))[2] == pytest.approx(10.0)
    assert quat_to_unity_euler(*quat_mul(quat_yaw(10.0), quat_yaw(10.0)))[1] == pytest.approx(20.0)
    assert chain([]) == IDENTITY
    assert chain([quat_yaw(3.0), quat_yaw(4.0)]) == quat_mul(quat_mul(IDENTITY, quat_yaw(3.0)), quat_yaw(4.0))


def test_product_is_matrix_product():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = (tuple(v / np.linalg.norm(v)) for v in rng.normal(size=(2, 4)))
        assert np.allclose(_matrix(quat_mul(a, b)), _matrix(a) @ _matrix(b), atol=1e-12)


def test_unity_order_round_trip():
    """Unity applies Z, then X, then Y (R = Ry Rx Rz): building a rotation that way and decomposing it returns
    the angles, away from the pitch = +-90 degree singularity."""
    rng = np.random.default_rng(1)
    for pitch, yaw, roll in rng.uniform([-80, -170, -170], [80, 170, 170], size=(200, 3)):
        q = chain([_axis("y", yaw), _axis("x", pitch), _axis("z", roll)])
        assert np.allclose(quat_to_unity_euler(*q), (pitch, yaw, roll), atol=1e-9)


def test_ifacialmocap_signs():
    assert unity_to_ifm(1.0, 2.0, 3.0) == (1.0, -2.0, -3.0)

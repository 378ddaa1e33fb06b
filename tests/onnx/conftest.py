"""Exports shared by the session: each student is traced once (seconds each), whatever the number of tests."""
from __future__ import annotations

import numpy as np
import pytest

from tests.shared import LAMBDA_00, LAMBDA_01
from tests.student.util import random_poses
from tha4bridge.pose import LOWER, UPPER

STUDENTS = {"lambda_00": LAMBDA_00, "lambda_01": LAMBDA_01}


def poses() -> np.ndarray:
    """A random pose in range, and an extreme one: every parameter at its lower or upper bound, drawn at random
    (two frames keep the suite fast; the all-upper and all-lower poses are two draws of the second kind)."""
    at_upper = np.random.default_rng(14).random(UPPER.shape) < 0.5
    return np.stack([random_poses(1, seed=14)[0], np.where(at_upper, UPPER, LOWER)]).astype(np.float32)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """name → the student exported to a .onnx file (our rearranged graph, float32), made on first use."""
    from tha4bridge.onnx.export import export

    folder, cache = tmp_path_factory.mktemp("onnx"), {}

    def get(name: str):
        if name not in cache:
            cache[name] = export(STUDENTS[name], folder / f"{name}.onnx")
        return cache[name]

    return get


@pytest.fixture(scope="session")
def exact_frames():
    """name → our exact torch renderer's frames for `poses()` (the reference every ONNX output is held to)."""
    from tha4bridge.student import StudentPoser

    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = StudentPoser(STUDENTS[name], device="cpu", mode="exact").render(poses()).clone()
        return cache[name]

    return get

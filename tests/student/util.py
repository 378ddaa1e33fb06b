"""Helpers for the student tests: random poses in range, the official reference outputs, a writable copy of
a fixture student to break."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.shared import FIXTURES, LAMBDA_00
from tha4bridge.pose import LOWER, NUM_PARAMETERS, UPPER

# What the official student code produced for lambda_00 (../shared/fixtures/tha4/README.md).
REFERENCE = FIXTURES / "reference" / "lambda_00"


def random_poses(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (LOWER + (UPPER - LOWER) * rng.random((n, NUM_PARAMETERS))).astype(np.float32)


def official_poses() -> np.ndarray:
    return np.load(REFERENCE / "poses.npy")


def official_outputs(name: str) -> np.ndarray:
    """`blended` [52, 4, 512, 512] or `face` [52, 4, 128, 128], float16."""
    return np.load(REFERENCE / "outputs_f16.npz")[name]


def writable_copy(tmp_path: Path) -> Path:
    """A copy of lambda_00 that a test may break (skips without the fixtures)."""
    if not LAMBDA_00.is_dir():
        pytest.skip("../shared/fixtures/tha4 is absent")
    dst = tmp_path / "student"
    shutil.copytree(LAMBDA_00, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst

from __future__ import annotations

import pytest

from tests.shared import LAMBDA_00
from tests.student.util import writable_copy
from tha4bridge.student import StudentPoser


@pytest.fixture(scope="module")
def exact():
    """lambda_00 in exact mode on the CPU (tests using it carry needs_fixtures)."""
    return StudentPoser(LAMBDA_00, device="cpu", mode="exact")


@pytest.fixture
def good_copy(tmp_path):
    return writable_copy(tmp_path)

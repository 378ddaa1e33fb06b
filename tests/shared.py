"""Where the real data lies: `../shared` beside the checkout (CI lays it there; a fresh clone may lack it).

Tests that need it skip with `needs_fixtures`'s reason instead of failing.
"""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures" / "tha4"
STUDENTS = FIXTURES / "students"
LAMBDA_00 = STUDENTS / "lambda_00"
LAMBDA_01 = STUDENTS / "lambda_01"

needs_fixtures = pytest.mark.skipif(
    not LAMBDA_00.is_dir(), reason="../shared/fixtures/tha4 is absent (a fresh clone without the shared fixtures)")

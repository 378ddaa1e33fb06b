"""Fixtures shared by the whole suite."""
from __future__ import annotations

import pytest

from tha4bridge.transport.ring import RING_DIR_ENV


@pytest.fixture
def own_ring_dir(tmp_path, monkeypatch):
    """A ring folder of the test's own (THA4BRIDGE_RING_DIR, inherited by the daemons and processes it starts):
    any daemon starting on this machine reclaims the stale ring files of its folder, so a test that looks at
    stale files must not share /dev/shm with another test run's or a user's daemons (the flake hunt saw it)."""
    folder = tmp_path / "rings"
    folder.mkdir()
    monkeypatch.setenv(RING_DIR_ENV, str(folder))
    return folder

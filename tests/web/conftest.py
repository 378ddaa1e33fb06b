"""One daemon with --http for the web tests that can share it (starting one costs seconds on 2 cores)."""
from __future__ import annotations

import pytest

from .util import WebServed


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    # --idle-fps 1: few idle frames, so a browser screenshot can be matched to the frame it shows by seq;
    # tests that need a stream of frames push poses (util.Pusher).
    s = WebServed("--http-allow-load", "--idle-fps", "1", log_dir=tmp_path_factory.mktemp("web"))
    yield s
    s.stop()

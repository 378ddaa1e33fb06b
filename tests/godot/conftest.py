"""One daemon with --http per test module (a start costs seconds on 2 cores): the demo character twice,
straight and premultiplied, breathing off so that a pose set by a test stays as set."""
from __future__ import annotations

import pytest

from tests.web.util import WebServed


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = WebServed("--student", "demo", "--student", "pm=demo", "--alpha", "pm=premultiplied",
                  "--breathing-period", "0", log_dir=tmp_path_factory.mktemp("godot"))
    yield s
    s.stop()

"""The Unity package's ControlClient drives the layers of a real daemon: SetExpression and Inject (with set/add,
weights, a timeout and a release), compiled with Mono's `mcs` and run with `mono`."""
from __future__ import annotations

import pytest

from tests.unity.csharp_build import CSHARP_TESTS, MISSING, SKIP_REASON, Daemon, build_core, mcs
from tests.unity.test_client import failures, run_csharp

pytestmark = pytest.mark.skipif(bool(MISSING), reason=SKIP_REASON)


def test_set_expression_and_inject_from_csharp(tmp_path):
    core = build_core(tmp_path)
    exe = tmp_path / "Tha4Bridge.Layer.Tests.exe"
    mcs(exe, [CSHARP_TESTS / "LayerTests.cs", CSHARP_TESTS / "Check.cs"], refs=[core], target="exe")
    with Daemon("demo") as d:
        lines, proc = run_csharp(exe, d.control)
    assert proc.returncode == 0 and lines and lines[-1] == {"done": {"failures": 0}}, failures(lines, proc)

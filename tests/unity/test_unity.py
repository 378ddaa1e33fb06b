"""The Unity side of the package: layout a Unity user installs, MonoBehaviours type-checked against
UnityEngine stand-ins (tests/unity/csharp/UnityStubs.cs, never shipped) and run against a real daemon."""
from __future__ import annotations

import json
import re

import pytest

from tests.unity.csharp_build import (CORE_SOURCES, CSHARP_TESTS, MISSING, PACKAGE, SAMPLE_SOURCES, SKIP_REASON, UNITY_SOURCES,
                          Daemon, build_core, mcs)
from tests.unity.test_client import PythonFrames, failures, run_csharp

needs_mono = pytest.mark.skipif(bool(MISSING), reason=SKIP_REASON)


def test_csharp_package_layout():
    manifest = json.loads((PACKAGE / "package.json").read_text())
    assert manifest["name"] == "com.tha4bridge.client"
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert all((PACKAGE / s["path"]).is_dir() for s in manifest["samples"])
    core = json.loads((CORE_SOURCES / "Tha4Bridge.Core.asmdef").read_text())
    assert core["noEngineReferences"] is True and core["allowUnsafeCode"] is True
    unity = json.loads((UNITY_SOURCES / "Tha4Bridge.Unity.asmdef").read_text())
    assert "Tha4Bridge.Core" in unity["references"]
    for cs in CORE_SOURCES.glob("*.cs"):
        assert "UnityEngine" not in cs.read_text(), f"{cs.name}: the core assembly must not use UnityEngine"
    # Stand-ins stay in tests/.
    assert not any("namespace UnityEngine" in p.read_text() for p in PACKAGE.rglob("*.cs"))


def test_csharp_package_meta_files():
    """Git-URL packages are immutable: Unity ignores assets without a .meta, so every one must ship with it."""
    guids = {}
    for p in sorted(PACKAGE.rglob("*")):
        rel = p.relative_to(PACKAGE)
        if p.suffix == ".meta" or any(part.endswith("~") for part in rel.parts):
            continue
        meta = p.with_name(p.name + ".meta")
        assert meta.is_file(), f"{rel} has no .meta"
        guid = re.search(r"^guid: ([0-9a-f]{32})$", meta.read_text(), re.M)
        assert guid, f"{rel}.meta has no guid"
        assert guid.group(1) not in guids, f"{rel} and {guids.get(guid.group(1))} share a guid"
        guids[guid.group(1)] = rel
    for meta in PACKAGE.rglob("*.meta"):
        assert meta.with_suffix("").exists(), f"orphan {meta.relative_to(PACKAGE)}"
    shader_guid = next(g for g, rel in guids.items() if rel.suffix == ".shader")
    material = (UNITY_SOURCES / "Materials" / "Tha4UnlitTransparent.mat").read_text()
    assert f"guid: {shader_guid}" in material, "the material must point at the package's shader"


@pytest.fixture(scope="module")
def unity_tests(tmp_path_factory):
    if MISSING:
        pytest.skip(SKIP_REASON)
    out = tmp_path_factory.mktemp("csharp_unity")
    core = build_core(out)
    engine = out / "UnityEngine.dll"
    mcs(engine, [CSHARP_TESTS / "UnityStubs.cs"])
    unity = out / "Tha4Bridge.Unity.dll"
    mcs(unity, sorted(UNITY_SOURCES.glob("*.cs")), refs=[engine, core], warnaserror=True)
    sample = out / "Tha4Bridge.Samples.BasicViewer.dll"
    mcs(sample, sorted(SAMPLE_SOURCES.glob("*.cs")), refs=[engine, core, unity], warnaserror=True)
    exe = out / "Tha4Bridge.Unity.Tests.exe"
    mcs(exe, [CSHARP_TESTS / "UnityTests.cs", CSHARP_TESTS / "Check.cs"], refs=[engine, core, unity, sample],
        target="exe")
    return exe


@needs_mono
def test_csharp_monobehaviours_typecheck(unity_tests):
    assert unity_tests.exists()  # the fixture compiled Runtime/Unity and the sample with warnings as errors


@needs_mono
def test_csharp_component_endpoints_are_the_daemon_defaults(unity_tests):
    from tha4bridge.defaults import CONTROL_ENDPOINT, FRAMES_ENDPOINT

    lines, proc = run_csharp(unity_tests, "defaults", CONTROL_ENDPOINT, FRAMES_ENDPOINT)
    assert proc.returncode == 0, failures(lines, proc)


@needs_mono
def test_csharp_unity_receiver_and_expression_live(unity_tests):
    with Daemon("demo", transport="shm") as daemon:
        python = PythonFrames(daemon.frames, daemon.stream)
        try:
            lines, proc = run_csharp(unity_tests, "receiver", daemon.frames, daemon.control, daemon.stream, timeout=180)
        finally:
            python.close()
    assert proc.returncode == 0, failures(lines, proc)
    shown = [line["shown"] for line in lines if "shown" in line]
    assert len(shown) >= 3
    both = [s for s in shown if s["seq"] in python.hashes]
    assert both, "no frame was seen by both the Unity receiver and the Python client"
    assert all(s["sha_flipped"] == python.hashes[s["seq"]] for s in both), "uploaded texture bytes differ from Python's"
    shutdown_ms = next(line["shutdown_ms"] for line in lines if "shutdown_ms" in line)
    assert float(shutdown_ms) < 1500

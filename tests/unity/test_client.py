"""The Unity package's C# client, compiled with Mono's `mcs` and run against a real `tha4bridge serve`.

What runs for real: the daemon (demo character and a fixture student), its ZeroMQ sockets, the shm ring,
the package's managed ZeroMQ client, ring reader and msgpack code (tests/unity/csharp/CoreTests.cs), and the
Python client `tha4bridge.client.FrameSubscriber` as the reference for pixel bytes.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import threading
from pathlib import Path

import msgpack
import numpy as np
import pytest

from tests.unity.csharp_build import (CORE_SOURCES, CSHARP_TESTS, MISSING, PACKAGE, SKIP_REASON, STUDENT, Daemon, build_core, mcs)
from tests.unity.csharp_vectors import VECTORS

pytestmark = pytest.mark.skipif(bool(MISSING), reason=SKIP_REASON)


@pytest.fixture(scope="module")
def core_tests(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("csharp")
    core = build_core(out)
    exe = out / "Tha4Bridge.Core.Tests.exe"
    mcs(exe, [CSHARP_TESTS / "CoreTests.cs", CSHARP_TESTS / "Check.cs"], refs=[core], target="exe")
    return exe


def run_csharp(exe: Path, *args: str, timeout: float = 120.0) -> tuple[list[dict], subprocess.CompletedProcess]:
    proc = subprocess.run(["mono", "--debug", str(exe), *args], capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return lines, proc


def failures(lines: list[dict], proc: subprocess.CompletedProcess) -> str:
    fails = [line["fail"] for line in lines if "fail" in line]
    return "\n".join(fails) + (f"\nstderr: {proc.stderr[-3000:]}" if proc.returncode else "")


class PythonFrames:
    """Collects sha256 of every frame the Python client receives, rows flipped as the C# client delivers them."""

    def __init__(self, endpoint: str, stream: str):
        from tha4bridge.client import FrameSubscriber

        self.sub = FrameSubscriber(endpoint, streams=stream)
        self.hashes: dict[int, str] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            frame = self.sub.recv(timeout=0.2)
            if frame is not None:
                self.hashes[frame.seq] = hashlib.sha256(np.ascontiguousarray(frame.pixels[::-1]).tobytes()).hexdigest()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sub.close()


# --- msgpack: the same bytes decode to the same values in C# and Python --------------------------------

def canonical(value):
    """The JSON form CoreTests.cs prints for a decoded value (see Json.Of)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if value != value:
            return {"$float": "nan"}
        if value in (float("inf"), float("-inf")):
            return {"$float": "inf" if value > 0 else "-inf"}
        return value
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {"$map": [[canonical(k), canonical(v)] for k, v in value.items()]}
    raise TypeError(type(value))


def canonical_from_json(value):
    """Undo the JSON-only encodings of floats so NaN/inf compare equal, and mark float32 as float."""
    if isinstance(value, dict):
        if "$f32" in value:
            return canonical_from_json(value["$f32"])
        return {k: canonical_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical_from_json(v) for v in value]
    return value


MSGPACK_CASES = [
    None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63 + 1, 2**64 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63,
    0.0, -0.0, 1.5, -2.25e300, float("inf"), float("-inf"), 1e-310,
    "", "a", "é ü 日本語", "x" * 31, "y" * 32, "z" * 255, "w" * 256, "v" * 70000,
    b"", b"\x00\xff", bytes(range(256)) * 2, b"q" * 70000,
    [], [1, [2, [3, []]]], list(range(16)), list(range(70000)),
    {}, {"a": 1}, {str(i): i for i in range(16)}, {1: "int key", -2: None, "nested": {"x": [1.5, "y"]}},
    {"proto": 1, "stream": "demo", "seq": 123456, "generation": 1795580377159256634, "width": 512,
     "t_pose": 1795580377.1397352, "pose_source": "tracker:vmc", "alpha": "straight"},
]


def test_csharp_msgpack_matches_python(core_tests, tmp_path):
    blobs = [msgpack.packb(v, use_bin_type=True) for v in MSGPACK_CASES]
    blobs.append(bytes.fromhex("ca3e800000"))  # float32 0.25, which msgpack-python never writes by default
    bad = [b"\x92\x01", b"\xc1", b"\xd4\x01\x02", b"\xdb\xff\xff\xff\xff", b"\x81\xc0\x01", b"\xdd\x7f\xff\xff\xff",
           b"\x91" * 100 + b"\x01", b"\x01\x02"]  # truncated, reserved, ext, huge length, nil key, deep, trailing
    cases = tmp_path / "cases.msgpack"
    cases.write_bytes(msgpack.packb(blobs + bad, use_bin_type=True))
    lines, proc = run_csharp(core_tests, "msgpack", str(cases))
    assert proc.returncode == 0, failures(lines, proc)
    got = {line["case"]["index"]: line["case"] for line in lines if "case" in line}
    for i, value in enumerate(MSGPACK_CASES):
        assert canonical_from_json(got[i]["value"]) == canonical(value), f"case {i}: {value!r:.80}"
        assert got[i]["repacked"] == blobs[i].hex(), f"C# writer differs from msgpack-python for case {i}"
    f32 = got[len(MSGPACK_CASES)]
    assert f32["value"] == {"$f32": 0.25} and f32["repacked"] == "ca3e800000"
    for j, blob in enumerate(bad, start=len(blobs)):
        assert "error" in got[j], f"malformed {blob[:8].hex()} was accepted: {got[j]}"


def test_csharp_decodes_protocol_vectors(core_tests, tmp_path):
    from tests.unity.csharp_vectors import from_csharp, load_vectors, strict_equal

    vectors = load_vectors()
    if not vectors:
        pytest.skip("protocols/vectors/ has no msgpack vectors")
    cases = tmp_path / "vectors.msgpack"
    cases.write_bytes(msgpack.packb([v.data for v in vectors], use_bin_type=True))
    lines, proc = run_csharp(core_tests, "msgpack", str(cases))
    assert proc.returncode == 0, failures(lines, proc)
    got = {line["case"]["index"]: line["case"] for line in lines if "case" in line}
    for i, v in enumerate(vectors):
        assert "error" not in got[i], f"{v.name}: {got[i].get('error')}"
        difference = strict_equal(from_csharp(got[i]["value"]), v.expected)
        assert difference is None, f"{v.name}: {difference}"
        assert got[i]["repacked"] == v.data.hex(), f"{v.name}: the C# writer encodes it differently"
    headers = [v for v in vectors if v.name.startswith("frame_header")]
    assert headers, "no frame header vectors"
    lines, proc = run_csharp(core_tests, "header", *[str(VECTORS / f"{v.name}.msgpack") for v in headers])
    assert proc.returncode == 0, failures(lines, proc)
    parsed = [line["header"] for line in lines if "header" in line]
    for v, h in zip(headers, parsed):
        e = v.expected
        assert (h["seq"], h["generation"], h["width"], h["height"], h["stride"], h["size"]) == \
               (e["seq"], e["generation"], e["width"], e["height"], e["stride"], e["size"]), v.name
        assert (h["transport"], h["premultiplied"], h["pose_source"]) == \
               (e["transport"], e["alpha"] == "premultiplied", e["pose_source"]), v.name
        assert (h["path"], h["slot"], h["offset"]) == (e.get("path"), e.get("slot", -1), e.get("offset", -1)), v.name
        assert (h["t_pose"], h["t_published"]) == (e["t_pose"], e["t_published"]), v.name
        assert h["pose"] == e["pose"] and len(h["pose"]) == 45, v.name  # since protocol 1.1
        # since 1.2: a crop stream's place in the whole frame (a whole frame: 0, 0, its own size)
        place = [*e["region"][:2], e["full_width"], e["full_height"]] if "region" in e else [0, 0, e["width"], e["height"]]
        assert (h["region"], h["crop"]) == (place, "region" in e), v.name


def test_csharp_reads_ring_header_vector(core_tests, tmp_path):
    import json

    source = VECTORS / "ring_header_v1.bin"
    if not source.is_file():
        pytest.skip("protocols/vectors/ring_header_v1.bin not present")
    expected = json.loads((VECTORS / "ring_header_v1.json").read_text())
    ring = tmp_path / "tha4bridge-4242-demo.ring"  # the vector's first bytes, zero pixels up to file_size
    with open(ring, "wb") as f:
        f.write(source.read_bytes())
        f.truncate(expected["file_size"])
    lines, proc = run_csharp(core_tests, "ring", str(ring))
    assert proc.returncode == 0, failures(lines, proc)
    got = next(line["ring"] for line in lines if "ring" in line)
    for key in ("version_major", "version_minor", "generation", "writer_pid", "state", "width", "height",
                "row_stride", "slot_count", "slot_size", "latest_seq", "latest_slot", "stream"):
        assert got[key] == expected[key], key
    assert got["premultiplied"] == (expected["alpha_mode"] == 1)
    assert got["slot_offsets"] == [expected["first_slot_offset"] + i * expected["slot_stride"]
                                   for i in range(expected["slot_count"])]
    assert got["slots"] == expected["slots"]
    # The seqlock verdicts for this table (seq 5, 6, 7, BUSY): see frames.md §2.2.
    assert got["reads"] == {"slot2_seq7": "Ok", "slot0_seq4": "Overwritten", "slot0_seq9": "NotYetWritten",
                            "slot3_seq8": "Busy"}


def test_csharp_parameter_names_match_python():
    from tha4bridge.pose import LOWER, PARAMETER_NAMES

    source = (CORE_SOURCES / "Tha4Parameters.cs").read_text()
    names_block = source.split("Names =", 1)[1].split("};", 1)[0]
    names = [part.strip().strip('"') for part in names_block.replace("{", "").split(",") if part.strip()]
    assert tuple(names) == PARAMETER_NAMES
    signed_block = source.split("Signed = new HashSet<string>", 1)[1].split("};", 1)[0]
    signed = {part.strip().strip('"') for part in signed_block.replace("{", "").split(",") if part.strip()}
    assert signed == {n for n, lo in zip(PARAMETER_NAMES, LOWER) if lo < 0}


def test_csharp_endpoints_match_python():
    """Tha4Endpoints.cs restates tha4bridge/defaults.py; the components take their defaults from it."""
    from tha4bridge.defaults import CONTROL_ENDPOINT, FRAMES_ENDPOINT

    source = (CORE_SOURCES / "Tha4Endpoints.cs").read_text()
    consts = dict(re.findall(r'public const string (\w+) = "([^"]*)";', source))
    assert consts == {"Control": CONTROL_ENDPOINT, "Frames": FRAMES_ENDPOINT}
    # Nowhere else in the package's code: the components and the sample use the constants.
    for cs in PACKAGE.rglob("*.cs"):
        if cs.name != "Tha4Endpoints.cs":
            text = cs.read_text()
            assert CONTROL_ENDPOINT not in text and FRAMES_ENDPOINT not in text, f"{cs.relative_to(PACKAGE)} restates an endpoint"


# --- live: the real daemon -----------------------------------------------------------------------------

def check_live(core_tests: Path, daemon: Daemon, transport: str, frames_needed: int = 30) -> None:
    python = PythonFrames(daemon.frames, daemon.stream)
    try:
        lines, proc = run_csharp(core_tests, "live", daemon.frames, daemon.control, daemon.stream,
                                 str(frames_needed), transport, timeout=240)
    finally:
        python.close()
    assert proc.returncode == 0, failures(lines, proc)
    frames = [line["frame"] for line in lines if "frame" in line]
    assert len(frames) >= frames_needed
    assert all(f["transport"] == transport.split("-")[0] for f in frames)
    # Pixel bytes: every frame both clients got must be identical (after the row flip).
    shared = [f for f in frames if f["seq"] in python.hashes]
    assert len(shared) >= frames_needed // 3, f"only {len(shared)} seqs seen by both clients"
    mismatched = [f["seq"] for f in shared if f["sha_flipped"] != python.hashes[f["seq"]]]
    assert not mismatched, f"C# and Python pixels differ for seqs {mismatched[:10]}"
    changed = next(line["expression_frame"] for line in lines if "expression_frame" in line)
    if changed["seq"] in python.hashes:
        assert changed["sha_flipped"] == python.hashes[changed["seq"]]
    if transport == "shm":  # not "shm-quick"
        slow = next(line["slow_reader"] for line in lines if "slow_reader" in line)
        assert slow == {"late": "Overwritten", "slow": "Torn"}


def test_csharp_live_shm_demo(core_tests):
    with Daemon("demo", transport="shm") as daemon:
        check_live(core_tests, daemon, "shm")


def test_csharp_live_inline_demo(core_tests):
    with Daemon("demo", transport="inline") as daemon:
        check_live(core_tests, daemon, "inline")


def test_csharp_live_shm_student(core_tests):
    if not STUDENT.is_dir():
        pytest.skip(f"fixture student {STUDENT} not found (../shared is absent)")
    # A student renders at about 1 frame/s on this shared 2-core box (the demo at 5-15), so this run takes
    # fewer frames and leaves the slow-reader checks, which are about the ring, not the renderer, to the demo.
    with Daemon(str(STUDENT), transport="shm") as daemon:
        check_live(core_tests, daemon, "shm-quick", frames_needed=10)

"""The test vectors of protocols/vectors/ (written by the daemon engineer), and helpers to compare the C#
test program's canonical JSON output with their expected decodings."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[2] / "protocols" / "vectors"


@dataclass
class Vector:
    name: str
    data: bytes
    expected: object


def load_vectors() -> list[Vector]:
    """Every NAME.msgpack that has a NAME.json expected decoding."""
    found = []
    for blob in sorted(VECTORS.glob("*.msgpack")):
        expected = blob.with_suffix(".json")
        if expected.is_file():
            found.append(Vector(blob.stem, blob.read_bytes(), json.loads(expected.read_text())))
    return found


def from_csharp(value):
    """CoreTests.cs canonical JSON (Json.Of) -> plain Python values (maps become dicts)."""
    if isinstance(value, dict):
        if "$map" in value:
            return {from_csharp(k): from_csharp(v) for k, v in value["$map"]}
        if "$f32" in value:
            return float(from_csharp(value["$f32"]))
        if "$float" in value:
            return float(value["$float"])
        if "$bin" in value:
            return bytes.fromhex(value["$bin"])
        raise ValueError(value)
    if isinstance(value, list):
        return [from_csharp(v) for v in value]
    return value


def strict_equal(a, b, where: str = "$") -> str | None:
    """None when equal with the same JSON types (1 != 1.0 != True); else where they first differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{where}: keys {sorted(map(str, set(a) ^ set(b)))} differ"
        for k in a:
            d = strict_equal(a[k], b[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = strict_equal(x, y, f"{where}[{i}]")
            if d:
                return d
        return None
    if type(a) is not type(b) or a != b:
        return f"{where}: {a!r} ({type(a).__name__}) != {b!r} ({type(b).__name__})"
    return None

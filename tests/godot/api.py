"""The public face of a GDScript file, read from its text: what a game sees of an addon node. Godot 3 and
Godot 4 spell the same things differently (`export var` / `@export var`, `yield` / `await`, type hints), so
only names, argument names and default values are kept — what must match between the two addons."""
from __future__ import annotations

import re
from pathlib import Path

_CLASS = re.compile(r"^class_name\s+(\w+)", re.M)
_SIGNAL = re.compile(r"^signal\s+(\w+)\s*(?:\(([^)]*)\))?", re.M)
_EXPORT = re.compile(r"^(?:export\b[^\n]*?|@export\w*(?:\([^)]*\))?\s+)var\s+(\w+)", re.M)
_VAR = re.compile(r"^var\s+([a-z]\w*)", re.M)  # public: no leading underscore
_FUNC = re.compile(r"^func\s+([a-z]\w*)\s*\((.*?)\)\s*(?:->\s*\w+\s*)?:", re.M | re.S)


def _args(text: str) -> tuple[tuple[str, str | None], ...]:
    """`a: int, b: float = 1.0` -> (("a", None), ("b", "1.0")): names and defaults, types dropped."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, default = part.partition("=")
        out.append((name.split(":")[0].strip(), default.strip() or None))
    return tuple(out)


def surface(path: Path) -> dict:
    text = path.read_text()
    names = _CLASS.findall(text)
    return {
        "class_name": names[0] if names else None,
        "signals": {m[0]: tuple(n for n, _ in _args(m[1])) for m in _SIGNAL.findall(text)},
        "exports": sorted(_EXPORT.findall(text)),
        "properties": sorted(_VAR.findall(text)),
        "methods": {m[0]: _args(m[1]) for m in _FUNC.findall(text)},
    }

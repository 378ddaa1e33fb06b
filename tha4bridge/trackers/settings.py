"""The user's tracker settings file (TOML, or YAML by extension): mapping, smoothing and idle sections.

Every key is optional; an unknown key or a wrong type is refused with one line naming the file and the key,
because a typo that silently does nothing is the worst kind of config bug. See protocols/osc.md for an example.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from .filters import SmoothingConfig
from .idle import IdleConfig
from .mapping import MappingConfig


@dataclass
class TrackerSettings:
    mapping: MappingConfig = field(default_factory=MappingConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    idle: IdleConfig = field(default_factory=IdleConfig)

    def check(self) -> None:
        self.mapping.check()
        self.smoothing.check()
        self.idle.check()


def _read(path: Path) -> dict:
    raw = path.read_bytes()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        doc = yaml.safe_load(raw.decode("utf-8")) or {}
    else:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        doc = tomllib.loads(raw.decode("utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("the top level must be a table")
    return doc


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fill(obj, table: dict, where: str) -> None:
    if not isinstance(table, dict):
        raise ValueError(f"[{where}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in table.items():
        if key not in fields:
            raise ValueError(f"unknown key {where}.{key} (known: {', '.join(sorted(fields))})")
        current = getattr(obj, key)
        if isinstance(current, bool) or key in ("enabled", "official", "swap_left_right"):
            ok = isinstance(value, bool)
        elif isinstance(current, float) or key == "seed":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if ok and key != "seed":
                value = float(value)
        elif isinstance(current, str):
            ok = isinstance(value, str)
        elif isinstance(current, dict):
            ok = isinstance(value, dict)
            if ok and key == "vrm":
                merged = dict(current)
                for preset, targets in value.items():
                    if not isinstance(targets, dict) or not all(_finite(v) for v in targets.values()):
                        raise ValueError(f"{where}.vrm.{preset} must map parameter names to numbers")
                    merged[str(preset).lower()] = {str(k): float(v) for k, v in targets.items()}
                value = merged
            elif ok:
                if not all(_finite(v) for v in value.values()):
                    raise ValueError(f"{where}.{key} must map parameter names to numbers")
                value = {str(k): float(v) for k, v in value.items()}
        elif isinstance(current, list):
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            ok = True
        if not ok:
            raise ValueError(f"{where}.{key} has the wrong type ({type(value).__name__})")
        setattr(obj, key, value)


def load_settings(path: str | Path | None) -> TrackerSettings:
    """Defaults when `path` is None. Raises ValueError with one line naming the file and the problem."""
    s = TrackerSettings()
    if path is None:
        return s
    p = Path(path).expanduser()
    try:
        doc = _read(p)
        for section, table in doc.items():
            if section not in ("mapping", "smoothing", "idle"):
                raise ValueError(f"unknown section [{section}] (known: mapping, smoothing, idle)")
            _fill(getattr(s, section), table, section)
        s.check()
    except FileNotFoundError:
        raise ValueError(f"{p}: no such tracker settings file") from None
    except Exception as e:  # TOML/YAML syntax errors, our checks
        raise ValueError(f"{p}: {e}") from None
    return s

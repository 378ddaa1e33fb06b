"""The library of named expressions: the shipped expressions.toml, plus a user folder that adds or overrides.

An expression is a partial pose ({parameter: value} at intensity 1). A bad file is refused at start-up with
one line naming the file, the entry and the problem, so a typo never silently does nothing on stage.
"""
from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path

from .pose import INDEX, LOWER, UPPER

Library = dict[str, dict[str, float]]


class ExpressionFileError(ValueError):
    pass


def parse(text: str, where: str) -> Library:
    """The entries of one TOML file; `where` names it in the refusal."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ExpressionFileError(f"{where}: not valid TOML ({e})") from None
    out: Library = {}
    for name, entry in doc.items():
        if not isinstance(entry, dict):
            raise ExpressionFileError(f"{where}: entry {name!r} must be a table [{name}] of parameter = value")
        values = {}
        for key, v in entry.items():
            i = INDEX.get(key)
            if i is None:
                raise ExpressionFileError(f"{where}: entry {name!r} names unknown pose parameter {key!r}")
            if key == "breathing":  # the animator's: breathing never stops under any layer
                raise ExpressionFileError(f"{where}: entry {name!r} may not set 'breathing' (the animator owns it)")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or not LOWER[i] <= v <= UPPER[i]:
                raise ExpressionFileError(f"{where}: entry {name!r} parameter {key!r} must be a number in "
                                          f"[{LOWER[i]:g}, {UPPER[i]:g}], got {v!r}")
            values[key] = float(v)
        out[name] = values
    return out


def load_library(user_dir: str | Path | None = None) -> Library:
    """The shipped expressions, then every *.toml of `user_dir` in name order (a later entry replaces)."""
    lib = parse(resources.files(__package__).joinpath("expressions.toml").read_text(encoding="utf-8"),
                "expressions.toml (shipped)")
    if user_dir is not None:
        d = Path(user_dir)
        if not d.is_dir():
            raise ExpressionFileError(f"--expressions {d}: not a folder")
        for f in sorted(d.glob("*.toml")):
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise ExpressionFileError(f"{f}: cannot be read ({e})") from None
            lib.update(parse(text, str(f)))
    lib["neutral"] = {}  # neutral always clears; a user file cannot redefine it
    return lib

"""The control command table: `Args` validates every request field in one place (each refusal one sentence
naming the field, with the code the protocol gives it); `@command` registers a function under its name;
`dispatch` checks the protocol version and calls the command with the daemon's services (services.py) and how
to send a deferred reply. The commands themselves are in commands.py (streams, poses, trackers, the daemon) and
layer_commands.py (expressions, injected values, talking), each in a `CommandTable` of its own; commands.py
joins the two into `COMMANDS`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from ..layers import VISEMES
from ..pose import INDEX
from ..region import Region, RegionError
from ..transport.control import RequestError
from ..transport.publisher import PROTO_MAJOR, PROTO_MINOR

if TYPE_CHECKING:
    from .services import Reply, Services

_MISSING = object()
MAX_VISEMES = 20000  # a timeline's items (10 minutes of `speak` at 30 a second fit)


class Args:
    """A request's fields; each getter refuses a missing or ill-typed value with one sentence."""

    def __init__(self, body: dict):
        self.body = body

    def streams(self, svc: "Services", allow_all: bool = False) -> list[str]:
        return svc.streams.resolve(self.body.get("stream"), allow_all)

    def string(self, key: str, default=_MISSING, what: str = "a string") -> str:
        v = self.body.get(key, default)
        if v is None and default is None:  # optional and absent
            return None
        if not isinstance(v, str) or not v:
            raise RequestError("bad_request", f"'{key}' must be {what}")
        return v

    def seconds(self, key: str, default: float, meaning: str) -> float:
        v = self.body.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise RequestError("bad_request", f"'{key}' must be a number of seconds >= 0 ({meaning})")
        return float(v)

    def region(self, key: str):
        """An optional crop: [x, y, w, h] or "x,y,w,h" (region.py); None when absent. The poser checks it fits."""
        v = self.body.get(key)
        if v is None:
            return None
        try:
            return Region.from_value(v, f"'{key}'")
        except RegionError as e:
            raise RequestError("bad_request", str(e)) from None

    def choice(self, key: str, options, default: str) -> str:
        v = self.body.get(key, default)
        if v not in options:
            raise RequestError("bad_request", f"'{key}' must be " + " or ".join(f'"{o}"' for o in options))
        return v

    def number(self, key: str, default=_MISSING, lo: float = -math.inf, hi: float = math.inf) -> float:
        v = self.body.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            raise RequestError("bad_request", f"'{key}' must be a number in [{lo:g}, {hi:g}]")
        return float(v)

    def boolean(self, key: str) -> bool:
        v = self.body.get(key)
        if not isinstance(v, bool):
            raise RequestError("bad_request", f"'{key}' must be true or false")
        return v

    def injected_values(self, key: str) -> dict[str, float]:
        """Like pose_values, but finite numbers only and never breathing (the animator's, always alive)."""
        values = self.pose_values(key)
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise RequestError("bad_pose", f"injected values must be finite numbers: {', '.join(bad[:5])}")
        if "breathing" in values:
            raise RequestError("bad_pose", "'breathing' cannot be injected: the animator keeps every pose breathing")
        return values

    def visemes(self, key: str) -> list[tuple[float, str, float]]:
        items = self.body.get(key)
        if not isinstance(items, list) or not items or len(items) > MAX_VISEMES:
            raise RequestError("bad_request", f"'{key}' must be a list of 1-{MAX_VISEMES} [t, viseme, weight] items")
        out = []
        for n, it in enumerate(items):
            ok = isinstance(it, (list, tuple)) and len(it) == 3 and it[1] in VISEMES and all(
                not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) for x in (it[0], it[2]))
            if not ok or it[0] < 0 or not 0 <= it[2] <= 1:
                raise RequestError("bad_request", f"'{key}' item {n} must be [t >= 0, one of "
                                                  f"{'/'.join(VISEMES)}, weight 0-1], got {str(it)[:60]}")
            out.append((float(it[0]), it[1], float(it[2])))
        return out

    def pose_values(self, key: str) -> dict[str, float]:
        values = self.body.get(key)
        if not isinstance(values, dict):
            raise RequestError("bad_request", f"'{key}' must be a map of parameter name to number")
        unknown = [k for k in values if k not in INDEX]
        if unknown:
            raise RequestError("bad_pose", f"unknown pose parameter(s): {', '.join(map(str, unknown[:5]))}")
        bad = [k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
        if bad:
            raise RequestError("bad_pose", f"pose values must be numbers: {', '.join(bad[:5])}")
        return {k: float(v) for k, v in values.items()}  # NaN and out-of-range values are repaired at render


Command = Callable[["Services", Args, "Reply"], object]  # returns the reply map, or DEFERRED (then calls Reply)


class CommandTable(dict):
    """Commands by name; `@table.command` registers `cmd_NAME` as NAME."""

    def command(self, fn: Command) -> Command:
        self[fn.__name__.removeprefix("cmd_")] = fn
        return fn


def dispatch(table: dict[str, Command], svc: "Services", body: dict, reply: "Reply"):
    """The reply to the request `body`, or DEFERRED when the command answers later through `reply`; a refusal
    raises RequestError (the transports turn it into an error reply)."""
    proto = body.get("proto")
    if proto is not None and proto != PROTO_MAJOR:
        return {"ok": False, "code": "version", "proto": PROTO_MAJOR, "proto_minor": PROTO_MINOR,
                "error": f"this daemon speaks tha4bridge protocol {PROTO_MAJOR}.x; the client asked for {proto!r}"}
    cmd = body.get("cmd")
    if not isinstance(cmd, str):
        raise RequestError("bad_request", "a request needs a string field 'cmd'")
    fn = table.get(cmd)
    if fn is None:
        raise RequestError("unknown_command", f"unknown command {cmd!r}; try one of {', '.join(sorted(table))}")
    return fn(svc, Args(body), reply)

"""The control commands (protocols/control.md): one small function each, found in one table.

`dispatch` checks the protocol version and looks the command up; `Args` validates every request field in one
place, so each refusal is one sentence naming the field, with the code the protocol gives it. Commands read
and change the daemon's parts (`ctx`: the `Daemon`) and never wait for a render: `load` finishes on a loader
thread and `unload` on the render thread, each replying later.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from .. import __version__
from ..defaults import CONTROL_HOLD
from ..pose import INDEX, NEUTRAL, PARAMETER_NAMES, pose_to_dict
from ..transport.control import DEFERRED, Request, RequestError
from ..transport.publisher import PROTO_MAJOR, PROTO_MINOR
from ..transport.ring import ALPHA_MODES, ring_dir
from .scheduler import shown
from .streams import default_stream_name

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger("tha4bridge.serve")
_MISSING = object()


class Args:
    """A request's fields; each getter refuses a missing or ill-typed value with one sentence."""

    def __init__(self, body: dict):
        self.body = body

    def streams(self, ctx: "Daemon", allow_all: bool = False) -> list[str]:
        return ctx.registry.resolve(self.body.get("stream"), allow_all)

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

    def choice(self, key: str, options, default: str) -> str:
        v = self.body.get(key, default)
        if v not in options:
            raise RequestError("bad_request", f"'{key}' must be " + " or ".join(f'"{o}"' for o in options))
        return v

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


Command = Callable[["Daemon", Args, Request], object]
COMMANDS: dict[str, Command] = {}


def command(fn: Command) -> Command:
    COMMANDS[fn.__name__.removeprefix("cmd_")] = fn
    return fn


def dispatch(ctx: "Daemon", request: Request):
    body = request.body
    proto = body.get("proto")
    if proto is not None and proto != PROTO_MAJOR:
        return {"ok": False, "code": "version", "proto": PROTO_MAJOR, "proto_minor": PROTO_MINOR,
                "error": f"this daemon speaks tha4bridge protocol {PROTO_MAJOR}.x; the client asked for {proto!r}"}
    cmd = body.get("cmd")
    if not isinstance(cmd, str):
        raise RequestError("bad_request", "a request needs a string field 'cmd'")
    fn = COMMANDS.get(cmd)
    if fn is None:
        raise RequestError("unknown_command", f"unknown command {cmd!r}; try one of {', '.join(sorted(COMMANDS))}")
    return fn(ctx, Args(body), request)


# --- information --------------------------------------------------------------------------------------------
@command
def cmd_hello(ctx: "Daemon", args: Args, request: Request) -> dict:
    client = args.body.get("client")
    if client:
        log.info("control: hello from %s", str(client)[:80])
    return {"ok": True, "proto": PROTO_MAJOR, "proto_minor": PROTO_MINOR, "version": __version__,
            "pid": os.getpid(), "control": ctx.control.endpoint, "frames": ctx.sink.endpoint,
            "transport": ctx.sink.transport, "streams": ctx.registry.infos(),
            "parameter_names": list(PARAMETER_NAMES),
            "trackers": dict(ctx.hub.ports) if ctx.hub is not None else {},
            "shm_dir": str(ring_dir()) if ctx.sink.transport == "shm" else ""}


@command
def cmd_streams(ctx: "Daemon", args: Args, request: Request) -> dict:
    return {"ok": True, "streams": ctx.registry.infos()}


@command
def cmd_get_pose(ctx: "Daemon", args: Args, request: Request) -> dict:
    name = args.streams(ctx)[0]
    tracked = ctx.scheduler.tracked()  # the freshest tracked pose, not the one of the render thread's last pass
    now = time.time()
    with ctx.registry.lock:
        s = ctx.registry.streams[name]
        view = shown(s, tracked, now, ctx.scheduler.started)
        remaining = s.control.remaining(now)
    pose, _ = ctx.scheduler.frame_pose(s, view, now)
    return {"ok": True, "stream": name, "pose": pose_to_dict(pose), "source": view.source,
            "received_at": view.t_pose, "hold_remaining": remaining}


@command
def cmd_stats(ctx: "Daemon", args: Args, request: Request) -> dict:
    with ctx.registry.lock:
        streams = {name: s.stats_dict() for name, s in ctx.registry.streams.items()}
    receivers = {}
    if ctx.hub is not None:
        try:
            receivers = ctx.hub.stats()
        except Exception as e:
            receivers = {"error": str(e)}
    return {"ok": True, "uptime": round(time.time() - ctx.started, 3), "transport": ctx.sink.transport,
            "streams": streams, "publisher": ctx.sink.stats(), "receivers": receivers,
            "control": {"requests": ctx.control.requests, "errors": ctx.control.errors}}


# --- poses --------------------------------------------------------------------------------------------------
@command
def cmd_set_pose(ctx: "Daemon", args: Args, request: Request) -> dict:
    names = args.streams(ctx, allow_all=True)
    values = args.pose_values("pose")
    hold = args.seconds("hold", CONTROL_HOLD, "0 = until release")
    replace = bool(args.body.get("replace", False))
    tracked = None if replace else ctx.scheduler.tracked()
    now = time.time()
    with ctx.registry.lock:
        for name in names:
            s = ctx.registry.streams[name]
            p = np.array(NEUTRAL if replace else shown(s, tracked, now, ctx.scheduler.started).pose,
                         dtype=np.float32, copy=True)
            for k, v in values.items():
                p[INDEX[k]] = v
            s.control.set(p, set(values), now, hold, replace)
            s.offer()
    ctx.scheduler.wake.set()
    return {"ok": True, "stream": names, "applied": len(values), "hold": hold}


@command
def cmd_release(ctx: "Daemon", args: Args, request: Request) -> dict:
    names = args.streams(ctx, allow_all=True)
    with ctx.registry.lock:
        for name in names:
            ctx.registry.streams[name].control.release()
            ctx.registry.streams[name].offer()
    ctx.scheduler.wake.set()
    return {"ok": True, "stream": names}


# --- streams ------------------------------------------------------------------------------------------------
@command
def cmd_load(ctx: "Daemon", args: Args, request: Request):
    path = args.string("path", what='a student folder or "demo"')
    alpha = args.choice("alpha", tuple(ALPHA_MODES), ctx.config.alpha)
    name = args.string("name", None) or default_stream_name(path)
    ctx.registry.reserve(name)

    def work() -> None:
        try:
            s = ctx.add_stream(name, path, alpha)
            reply = {"ok": True, "stream": s.info(ctx.sink)}
        except RequestError as e:
            reply = {"ok": False, "code": e.code, "error": str(e)}
        except Exception as e:  # ModelFileError and friends: one line naming the file
            log.info("stream %s: load of %s failed: %s", name, path, e)
            reply = {"ok": False, "code": "load_failed", "error": str(e) or type(e).__name__}
        finally:
            ctx.registry.unreserve(name)
        ctx.control.reply_later(request, reply)

    threading.Thread(target=work, name=f"load-{name}", daemon=True).start()
    return DEFERRED


@command
def cmd_unload(ctx: "Daemon", args: Args, request: Request):
    if args.body.get("stream") is None:
        raise RequestError("bad_request", "say which stream to unload ('stream' field)")
    name = args.streams(ctx)[0]
    ctx.registry.retire(name, lambda s: ctx.control.reply_later(request, {"ok": True, "stream": s.name}))
    ctx.scheduler.wake.set()
    return DEFERRED  # answered by the render thread once the ring file is gone


# --- trackers and the daemon --------------------------------------------------------------------------------
def _hub(ctx: "Daemon"):
    if ctx.hub is None:
        raise RequestError("unavailable", "tracker input is off in this daemon (started with --no-trackers "
                                          "or without tracker support)")
    return ctx.hub


@command
def cmd_calibrate(ctx: "Daemon", args: Args, request: Request) -> dict:
    try:
        result = _hub(ctx).calibrate()
    except RuntimeError as e:  # no tracker data yet
        raise RequestError("not_ready", str(e)) from None
    log.info("tracker calibrated")
    return {"ok": True, "calibration": result if isinstance(result, dict) else {}}


@command
def cmd_clear_calibration(ctx: "Daemon", args: Args, request: Request) -> dict:
    _hub(ctx).clear_calibration()
    log.info("tracker calibration cleared")
    return {"ok": True}


@command
def cmd_shutdown(ctx: "Daemon", args: Args, request: Request) -> dict:
    log.info("shutdown requested over the control socket")
    ctx.stop_event.set()
    return {"ok": True}

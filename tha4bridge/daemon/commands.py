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
from ..layers import VISEMES, Injection, Look
from ..pose import INDEX, NEUTRAL, PARAMETER_NAMES, pose_to_dict
from ..talking import envelope_visemes, wav_envelope
from ..transport.control import DEFERRED, Request, RequestError
from ..transport.publisher import PROTO_MAJOR, PROTO_MINOR
from ..transport.ring import ALPHA_MODES, ring_dir
from .scheduler import shown
from .streams import default_stream_name

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger("tha4bridge.serve")
_MISSING = object()
MAX_VISEMES = 20000  # a timeline's items (10 minutes of `speak` at 30 a second fit)
INJECT_TIMEOUT = 1.0  # s an injection lasts unless re-sent (VTube Studio's convention)


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
    layers: dict = {}
    pose, _ = ctx.scheduler.frame_pose(s, view, now, layers)
    return {"ok": True, "stream": name, "pose": pose_to_dict(pose), "source": view.source,
            "received_at": view.t_pose, "hold_remaining": remaining, "t": now, "layers": layers}


@command
def cmd_stats(ctx: "Daemon", args: Args, request: Request) -> dict:
    with ctx.registry.lock:
        now = time.time()
        streams = {name: {**s.stats_dict(), "layers": s.layers.summary(now)}
                   for name, s in ctx.registry.streams.items()}
    receivers = {}
    if ctx.hub is not None:
        try:
            receivers = ctx.hub.stats()
        except Exception as e:
            receivers = {"error": str(e)}
    return {"ok": True, "uptime": round(time.time() - ctx.started, 3), "transport": ctx.sink.transport,
            "streams": streams, "publisher": ctx.sink.stats(), "receivers": receivers,
            "control": {"requests": ctx.control.requests, "errors": ctx.control.errors,
                        "too_large": ctx.control.too_large, "osc_refused": ctx.osc_refused}}


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
    """With `source`: that source's injection only; without: the control hold and every injection."""
    names = args.streams(ctx, allow_all=True)
    source = args.string("source", None)
    released = []
    with ctx.registry.lock:
        for name in names:
            s = ctx.registry.streams[name]
            if source is None:
                s.control.release()
            with s.layers.lock:
                gone = [source] if source in s.layers.sources else [] if source else list(s.layers.sources)
                for n in gone:
                    del s.layers.sources[n]
                s.layers.changed()
            released += gone
            s.offer()
    ctx.scheduler.wake.set()
    return {"ok": True, "stream": names, "released": sorted(set(released))}


# --- layers: expressions, injected parameters, talking (layers.py composes them) -------------------------
def _layers(ctx: "Daemon", names: list[str], change) -> float:
    """Apply `change(layers, now)` to each stream's layers (called once every field is checked, so a refused
    request applies nothing); returns `now`, the daemon-clock moment it took effect."""
    now = time.time()
    with ctx.registry.lock:
        for name in names:
            s = ctx.registry.streams[name]
            with s.layers.lock:
                change(s.layers, now)
                s.layers.changed()
            s.offer()
    ctx.scheduler.wake.set()
    return now


@command
def cmd_expressions(ctx: "Daemon", args: Args, request: Request) -> dict:
    return {"ok": True, "expressions": ctx.expressions}


@command
def cmd_set_expression(ctx: "Daemon", args: Args, request: Request) -> dict:
    names = args.streams(ctx, allow_all=True)
    name = args.string("name", what="an expression name (see the `expressions` command)")
    if name not in ctx.expressions:
        raise RequestError("bad_request", f"unknown expression {name!r}; the `expressions` command lists them")
    intensity = args.number("intensity", 1.0, 0.0, 1.0)
    fade = args.seconds("fade", 0.3, "the eased fade's length")
    hold = None if args.body.get("hold") is None else args.seconds("hold", None, "then back to the one before")
    look = Look.of(name, ctx.expressions[name], intensity)
    at = _layers(ctx, names, lambda layers, now: layers.expression.set(look, fade, hold, now))
    return {"ok": True, "stream": names, "name": name, "intensity": intensity, "fade": fade, "hold": hold,
            "at": at}


@command
def cmd_inject(ctx: "Daemon", args: Args, request: Request) -> dict:
    names = args.streams(ctx, allow_all=True)
    source = args.string("source", what="a name for the injecting program")
    if len(source) > 64:
        raise RequestError("bad_request", "'source' must be at most 64 characters")
    values = args.injected_values("params")
    weight = args.number("weight", 1.0, 0.0, 1.0)
    mode = args.choice("mode", ("set", "add"), "set")
    timeout = args.seconds("timeout", INJECT_TIMEOUT, "0 = until released")
    indexed = {INDEX[k]: v for k, v in values.items()}

    def change(layers, now):
        until = math.inf if timeout == 0 else now + timeout
        old = layers.sources.get(source)
        at = old.at if old is not None and now < old.until else now  # a re-send keeps its place in the order
        layers.sources[source] = Injection(indexed, weight, mode, at, until)

    at = _layers(ctx, names, change)
    return {"ok": True, "stream": names, "source": source, "applied": len(values), "timeout": timeout, "at": at}


@command
def cmd_talk(ctx: "Daemon", args: Args, request: Request) -> dict:
    names = args.streams(ctx, allow_all=True)
    on = args.boolean("on")
    at = _layers(ctx, names, _talking(args, lambda layers, now: layers.talking.talk(on, now)))
    return {"ok": True, "stream": names, "on": on, "at": at}


@command
def cmd_mouth(ctx: "Daemon", args: Args, request: Request) -> dict:
    names = args.streams(ctx, allow_all=True)
    level = args.number("level", _MISSING, 0.0, 1.0)
    at = _layers(ctx, names, _talking(args, lambda layers, now: layers.talking.set_level(level, now)))
    return {"ok": True, "stream": names, "level": level, "at": at}


def _talking(args: Args, change):
    """A talking request's change, with its `over_tracker` (default false: a live tracker's mouth wins)."""
    over = args.boolean("over_tracker") if "over_tracker" in args.body else False

    def apply(layers, now):
        layers.talking.over_tracker = over
        change(layers, now)
    return apply


def _start(args: Args) -> float:
    """A timeline's start on the daemon's clock (time.time() seconds), or "now"."""
    start = args.body.get("start", "now")
    return time.time() if start == "now" else args.number("start", _MISSING, 0.0)


@command
def cmd_visemes(ctx: "Daemon", args: Args, request: Request) -> dict:
    names = args.streams(ctx, allow_all=True)
    items = args.visemes("items")
    start = _start(args)
    _layers(ctx, names, _talking(args, lambda layers, now: layers.talking.set_visemes(start, items)))
    return {"ok": True, "stream": names, "start": start, "items": len(items)}


@command
def cmd_speak(ctx: "Daemon", args: Args, request: Request) -> dict:
    """The mouth follows a WAV file's loudness from `start` (the daemon reads the file; it plays nothing)."""
    names = args.streams(ctx, allow_all=True)
    path = args.string("path", what="the path of a WAV file on the daemon's machine")
    start = _start(args)
    try:
        items = envelope_visemes(wav_envelope(path))
    except ValueError as e:
        raise RequestError("bad_request", str(e)) from None
    _layers(ctx, names, _talking(args, lambda layers, now: layers.talking.set_visemes(start, items)))
    return {"ok": True, "stream": names, "start": start, "seconds": items[-1][0] if items else 0.0}


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

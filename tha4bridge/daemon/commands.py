"""The control commands (protocols/control.md) for streams, poses, trackers and the daemon: one small function
each, registered in table.py's table (layer_commands.py adds the expression and talking commands).

Commands read and change the daemon's parts (`ctx`: the `Daemon`) and never wait for a render: `load`
finishes on a loader thread and `unload` on the render thread, each replying later. Import this module for
the whole table: it imports layer_commands, whose functions register themselves.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..defaults import CONTROL_HOLD
from ..pose import INDEX, NEUTRAL, PARAMETER_NAMES, pose_to_dict
from ..transport.control import DEFERRED, Request, RequestError
from ..transport.publisher import PROTO_MAJOR, PROTO_MINOR
from ..transport.ring import ALPHA_MODES, ring_dir
from .scheduler import shown
from .streams import default_stream_name
from .table import COMMANDS, Args, command, dispatch  # noqa: F401  (the table's entry points, re-exported)

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger("tha4bridge.serve")


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


# --- streams ------------------------------------------------------------------------------------------------
@command
def cmd_load(ctx: "Daemon", args: Args, request: Request):
    path = args.string("path", what='a student folder or "demo"')
    alpha = args.choice("alpha", tuple(ALPHA_MODES), ctx.config.alpha)
    name = args.string("name", None) or default_stream_name(path)
    region = args.region("region") or ctx.config.region_of(name)  # else serve's --region (NAME=) for it
    ctx.registry.reserve(name)

    def work() -> None:
        try:
            s = ctx.add_stream(name, path, alpha, region)
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


from . import layer_commands  # noqa: E402,F401  (registers the expression and talking commands)

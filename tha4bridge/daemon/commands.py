"""The control commands (protocols/control.md) for streams, poses, trackers and the daemon: one small function
each, in this module's table; `COMMANDS` joins it with layer_commands.py's (expressions, injected values,
talking), and `dispatch` answers a request from that one table.

Commands use the daemon's services (services.py) and never wait for a render: `load` finishes on a loader
thread and `unload` on the render thread, each answering later through `reply`.
"""
from __future__ import annotations

import logging
import os
import time

from .. import __version__
from ..defaults import CONTROL_HOLD, DEMO
from ..pose import PARAMETER_NAMES
from ..transport.control import DEFERRED, RequestError
from ..transport.publisher import PROTO_MAJOR, PROTO_MINOR
from ..transport.ring import ALPHA_MODES, ring_dir
from . import table
from .layer_commands import LAYER_COMMANDS
from .services import Reply, Services
from .streams import default_stream_name
from .table import Args, CommandTable

log = logging.getLogger("tha4bridge.serve")
_TABLE = CommandTable()
command = _TABLE.command


# --- information --------------------------------------------------------------------------------------------
@command
def cmd_hello(svc: Services, args: Args, reply: Reply) -> dict:
    client = args.body.get("client")
    if client:
        log.info("control: hello from %s", str(client)[:80])
    me = svc.identity
    return {"ok": True, "proto": PROTO_MAJOR, "proto_minor": PROTO_MINOR, "version": __version__,
            "pid": os.getpid(), "control": me.control, "frames": me.frames, "transport": me.transport,
            "streams": svc.streams.infos(), "parameter_names": list(PARAMETER_NAMES),
            "trackers": svc.trackers.ports(), "shm_dir": str(ring_dir()) if me.transport == "shm" else ""}


@command
def cmd_streams(svc: Services, args: Args, reply: Reply) -> dict:
    return {"ok": True, "streams": svc.streams.infos()}


@command
def cmd_get_pose(svc: Services, args: Args, reply: Reply) -> dict:
    return {"ok": True, **svc.streams.pose(args.streams(svc)[0])}


@command
def cmd_stats(svc: Services, args: Args, reply: Reply) -> dict:
    counters = svc.counters()
    return {"ok": True, "uptime": round(time.time() - svc.identity.started, 3), "transport": svc.identity.transport,
            "streams": svc.streams.stats(), "publisher": counters["publisher"], "receivers": svc.trackers.stats(),
            "control": counters["control"]}


# --- poses --------------------------------------------------------------------------------------------------
@command
def cmd_set_pose(svc: Services, args: Args, reply: Reply) -> dict:
    names = args.streams(svc, allow_all=True)
    values = args.pose_values("pose")
    hold = args.seconds("hold", CONTROL_HOLD, "0 = until release")
    svc.streams.set_pose(names, values, hold, replace=bool(args.body.get("replace", False)))
    return {"ok": True, "stream": names, "applied": len(values), "hold": hold}


@command
def cmd_release(svc: Services, args: Args, reply: Reply) -> dict:
    """With `source`: that source's injection only; without: the control hold and every injection."""
    names = args.streams(svc, allow_all=True)
    released = svc.streams.release(names, args.string("source", None))
    return {"ok": True, "stream": names, "released": released}


# --- streams ------------------------------------------------------------------------------------------------
@command
def cmd_load(svc: Services, args: Args, reply: Reply):
    path = args.string("path", what=f'a student folder or "{DEMO}"')
    alpha = args.choice("alpha", tuple(ALPHA_MODES), None) if "alpha" in args.body else None
    name = args.string("name", None) or default_stream_name(path)
    svc.streams.load(name, path, alpha, args.region("region"), reply)
    return DEFERRED


@command
def cmd_unload(svc: Services, args: Args, reply: Reply):
    if args.body.get("stream") is None:
        raise RequestError("bad_request", "say which stream to unload ('stream' field)")
    svc.streams.unload(args.streams(svc)[0], reply)
    return DEFERRED  # answered by the render thread once the ring file is gone


# --- trackers and the daemon --------------------------------------------------------------------------------
@command
def cmd_calibrate(svc: Services, args: Args, reply: Reply) -> dict:
    result = svc.trackers.calibrate()
    log.info("tracker calibrated")
    return {"ok": True, "calibration": result}


@command
def cmd_clear_calibration(svc: Services, args: Args, reply: Reply) -> dict:
    svc.trackers.clear_calibration()
    log.info("tracker calibration cleared")
    return {"ok": True}


@command
def cmd_shutdown(svc: Services, args: Args, reply: Reply) -> dict:
    log.info("shutdown requested over the control socket")
    svc.stop()
    return {"ok": True}


COMMANDS: dict = {**_TABLE, **LAYER_COMMANDS}


def dispatch(svc: Services, body: dict, reply: Reply):
    """The reply to the request `body` (or DEFERRED: `reply` is called later); RequestError for a refusal."""
    return table.dispatch(COMMANDS, svc, body, reply)

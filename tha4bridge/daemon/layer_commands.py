"""The layer commands (protocols/control.md, "Since 1.2"): expressions, injected parameters and talking, each
applied to a stream's `Layers` through `Streams.change_layers` (layers.py applies them to the pose the frame
shows, framepose.py); `LAYER_COMMANDS` is their table."""
from __future__ import annotations

import math
import time

from ..layers import Injection, Look
from ..pose import INDEX
from ..talking import envelope_visemes, wav_envelope
from ..transport.control import RequestError
from .services import Reply, Services
from .table import _MISSING, Args, CommandTable

CANNOT_USE_FILE = "cannot use this file: `speak` needs a readable PCM WAV file on the daemon's machine"
INJECT_TIMEOUT = 1.0  # s an injection lasts unless re-sent (VTube Studio's convention)
LAYER_COMMANDS = CommandTable()
command = LAYER_COMMANDS.command


@command
def cmd_expressions(svc: Services, args: Args, reply: Reply) -> dict:
    return {"ok": True, "expressions": svc.expressions}


@command
def cmd_set_expression(svc: Services, args: Args, reply: Reply) -> dict:
    names = args.streams(svc, allow_all=True)
    name = args.string("name", what="an expression name (see the `expressions` command)")
    if name not in svc.expressions:
        raise RequestError("bad_request", f"unknown expression {name!r}; the `expressions` command lists them")
    intensity = args.number("intensity", 1.0, 0.0, 1.0)
    fade = args.seconds("fade", 0.3, "the eased fade's length")
    hold = None if args.body.get("hold") is None else args.seconds("hold", None, "then back to the one before")
    look = Look.of(name, svc.expressions[name], intensity)
    at = svc.streams.change_layers(names, lambda layers, now: layers.expression.set(look, fade, hold, now))
    return {"ok": True, "stream": names, "name": name, "intensity": intensity, "fade": fade, "hold": hold,
            "at": at}


@command
def cmd_inject(svc: Services, args: Args, reply: Reply) -> dict:
    names = args.streams(svc, allow_all=True)
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

    at = svc.streams.change_layers(names, change)
    return {"ok": True, "stream": names, "source": source, "applied": len(values), "timeout": timeout, "at": at}


@command
def cmd_talk(svc: Services, args: Args, reply: Reply) -> dict:
    names = args.streams(svc, allow_all=True)
    on = args.boolean("on")
    at = svc.streams.change_layers(names, _talking(args, lambda layers, now: layers.talking.talk(on, now)))
    return {"ok": True, "stream": names, "on": on, "at": at}


@command
def cmd_mouth(svc: Services, args: Args, reply: Reply) -> dict:
    names = args.streams(svc, allow_all=True)
    level = args.number("level", _MISSING, 0.0, 1.0)
    at = svc.streams.change_layers(names, _talking(args, lambda layers, now: layers.talking.set_level(level, now)))
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
def cmd_visemes(svc: Services, args: Args, reply: Reply) -> dict:
    names = args.streams(svc, allow_all=True)
    items = args.visemes("items")
    start = _start(args)
    svc.streams.change_layers(names, _talking(args, lambda layers, now: layers.talking.set_visemes(start, items)))
    return {"ok": True, "stream": names, "start": start, "items": len(items)}


@command
def cmd_speak(svc: Services, args: Args, reply: Reply) -> dict:
    """The mouth follows a WAV file's loudness from `start` (the daemon reads the file; it plays nothing)."""
    names = args.streams(svc, allow_all=True)
    path = args.string("path", what="the path of a WAV file on the daemon's machine")
    start = _start(args)
    try:
        items = envelope_visemes(wav_envelope(path))
    except ValueError as e:  # over HTTP one sentence for every case: no oracle for which paths exist
        raise RequestError("bad_request", str(e), public=CANNOT_USE_FILE) from None
    svc.streams.change_layers(names, _talking(args, lambda layers, now: layers.talking.set_visemes(start, items)))
    return {"ok": True, "stream": names, "start": start, "seconds": items[-1][0] if items else 0.0}

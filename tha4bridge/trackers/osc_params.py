"""Our own OSC address family to set THA4 parameters by name (protocols/osc.md).

    /tha4/param/<name> f          one parameter, e.g. /tha4/param/mouth_aaa 0.8
    /tha4/param s f               the same with the name as an argument
    /tha4/params (s f)*           several at once
    /tha4/pose f*45               the whole vector in the official order
    /tha4/release [s*]            give the named parameters (or all) back to the trackers and idle motion
    /tha4/expression s [f [f]]    a named expression [intensity 0-1] [fade seconds] on every stream
    /tha4/talk i                  procedural talking on (1) or off (0)
    /tha4/mouth f                 the mouth level 0-1 (an audio meter), lapses 1 s after the last one

Values set this way override the tracked/idle pose for those parameters (an overlay), so a game can drive
the mouth from its lip sync while the face tracker or the idle motion keeps the rest alive. Messages of one
datagram (one bundle) take effect together.

The last three are the control socket's `set_expression`, `talk` and `mouth` for engines that only speak OSC:
they are queued here as control requests (`requests`), and the daemon runs them through the same command
table (so they are checked and refused in one place) when the hub calls its listeners.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..pose import INDEX, LOWER, NUM_PARAMETERS, UPPER
from .osc import OscError, number, parse_messages
from .udp import MAX_DATAGRAM, Malformed, UdpReceiver

PREFIX = "/tha4/"  # the family's addresses; on the shared VMC socket, vmc.py routes them here by it


class ParamError(OscError):
    """A `/tha4/` message that is dropped (the rest of its datagram still applies); `args[0]` is the reason."""


class OscParamState:
    """The overlay: which parameters are set and to what. Written by one receiver thread at a time."""

    def __init__(self):
        self.values = np.zeros(NUM_PARAMETERS, dtype=np.float32)
        self.mask = np.zeros(NUM_PARAMETERS, dtype=bool)
        self.messages = 0
        self.clamped = 0
        # control requests from /tha4/expression, /tha4/talk, /tha4/mouth, for the daemon to take (thread-safe:
        # a receiver appends, a listener pops); bounded, so nobody taking them costs nothing
        self.requests: deque[dict] = deque(maxlen=64)

    def _set(self, values: np.ndarray, mask: np.ndarray, name, v) -> None:
        if not isinstance(name, str):
            raise ParamError("wrong_type")
        i = INDEX.get(name)
        if i is None:
            raise ParamError("unknown_parameter")
        x = number(v)
        if not math.isfinite(x):
            raise ParamError("non_finite")
        c = min(max(x, float(LOWER[i])), float(UPPER[i]))
        self.clamped += c != x
        values[i] = c
        mask[i] = True

    def apply(self, messages, count) -> bool:
        """One datagram's messages, together: on working copies, kept when at least one message applied.
        `count(reason)` for each message skipped. True if the overlay was set."""
        values, mask = self.values.copy(), self.mask.copy()
        ok = 0
        for m in messages:
            try:
                self.handle(m.address, m.params, values, mask)
                ok += 1
            except OscError as e:
                count(e.args[0])
        if ok:
            self.values, self.mask = values, mask
        return ok > 0

    def handle(self, address: str, params: list, values: np.ndarray, mask: np.ndarray) -> None:
        """Apply one message to the working copies; raises OscError (the message is then skipped)."""
        self.messages += 1
        if address.startswith("/tha4/param/"):
            if len(params) < 1:
                raise ParamError("too_few_args")
            self._set(values, mask, address[len("/tha4/param/"):], params[0])
        elif address == "/tha4/param":
            if len(params) < 2:
                raise ParamError("too_few_args")
            self._set(values, mask, params[0], params[1])
        elif address == "/tha4/params":
            if len(params) % 2:
                raise ParamError("too_few_args")
            v2, m2 = values.copy(), mask.copy()  # all or nothing
            for k in range(0, len(params), 2):
                self._set(v2, m2, params[k], params[k + 1])
            values[:], mask[:] = v2, m2
        elif address == "/tha4/pose":
            if len(params) < NUM_PARAMETERS:
                raise ParamError("too_few_args")
            p = np.array([number(v) for v in params[:NUM_PARAMETERS]], dtype=np.float64)
            if not np.isfinite(p).all():
                raise ParamError("non_finite")
            c = np.clip(p, LOWER, UPPER)
            self.clamped += int((c != p).sum())
            values[:] = c
            mask[:] = True
        elif address == "/tha4/release":
            names = params or None
            if names is None:
                mask[:] = False
                values[:] = 0.0
            else:
                for n in names:
                    i = INDEX.get(n) if isinstance(n, str) else None
                    if i is None:
                        raise ParamError("unknown_parameter")
                    mask[i] = False
                    values[i] = 0.0
        elif address in _LAYER_ADDRESSES:
            self.requests.append(_LAYER_ADDRESSES[address](params))
        else:
            raise ParamError("unknown_address")


def _finite(v) -> float:
    x = number(v)
    if not math.isfinite(x):
        raise ParamError("non_finite")
    return x


def _expression(params: list) -> dict:
    if not params or not isinstance(params[0], str):
        raise ParamError("wrong_type" if params else "too_few_args")
    body = {"cmd": "set_expression", "stream": "*", "name": params[0]}
    for key, v in zip(("intensity", "fade"), params[1:3]):
        body[key] = _finite(v)
    return body


def _talk(params: list) -> dict:
    if not params:
        raise ParamError("too_few_args")
    return {"cmd": "talk", "stream": "*", "on": _finite(params[0]) != 0}


def _mouth(params: list) -> dict:
    if not params:
        raise ParamError("too_few_args")
    return {"cmd": "mouth", "stream": "*", "level": _finite(params[0])}


_LAYER_ADDRESSES = {"/tha4/expression": _expression, "/tha4/talk": _talk, "/tha4/mouth": _mouth}


class OscParamReceiver(UdpReceiver):
    """A socket of its own for the /tha4/ family (when it does not share the VMC socket)."""

    name = "osc-params"

    def __init__(self, host: str, port: int, state: OscParamState, publish_overlay,
                 max_datagram: int = MAX_DATAGRAM):
        super().__init__(host, port, max_datagram)
        self.state, self.publish_overlay = state, publish_overlay

    def handle(self, data: bytes, addr, t: float) -> None:
        try:
            msgs = parse_messages(data)
        except OscError as e:
            raise Malformed(e.args[0]) from None
        st = self.state
        if st.apply(msgs, self._count):
            self.accepted += 1
            self.last_fresh = t
            self.publish_overlay(st.values, st.mask, t)

"""The control socket's wire side (protocols/control.md): a ROUTER that decodes msgpack maps and replies.

`ControlServer` knows nothing about commands: `poll` hands each decoded request (with its envelope) to a
handler and sends back whatever map it returns. A handler may instead return `DEFERRED` and reply later
from another thread through `reply_later` (a `load` takes seconds; other clients must not wait for it).
"""
from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass

import msgpack
import zmq

from .sockets import bind

DEFERRED = object()
log = logging.getLogger("tha4bridge.serve")
MAX_REQUEST = 1 << 20  # bytes; the largest real request (a set_pose of all 45 names) is ~2 kB
# Above MAX_REQUEST we still read the request and answer `too_large`; only above this hard limit does
# ZeroMQ itself drop the message and the connection (memory stays bounded), unseen by us: protocols/control.md.
HARD_MAX_REQUEST = 64 << 20
ERROR_LOG_INTERVAL = 1.0  # at most one log line per second about refused requests (a client may spam)


class RequestError(Exception):
    """A request we refuse: `code` and a sentence for the reply. `public`: the sentence for callers who may not
    learn more than that (HTTP, which a browser or the LAN reaches), when the full one tells more than it
    should (`speak`: whether a path exists); the control socket answers with the full sentence."""

    def __init__(self, code: str, message: str, public: str | None = None):
        super().__init__(message)
        self.code = code
        self.public = public


@dataclass
class Request:
    envelope: list
    body: dict

    @property
    def id(self):
        return self.body.get("id")


def error_reply(code: str, message: str, request_id=None) -> dict:
    reply = {"ok": False, "code": code, "error": message}
    if request_id is not None:
        reply["id"] = request_id
    return reply


class ControlServer:
    def __init__(self, endpoint: str, context: zmq.Context | None = None):
        self.ctx = context or zmq.Context.instance()
        self.sock, self.endpoint = bind(self.ctx, zmq.ROUTER, endpoint, {
            zmq.ROUTER_MANDATORY: 0,  # a vanished client's reply is silently dropped
            zmq.MAXMSGSIZE: HARD_MAX_REQUEST,  # a peer sending more is disconnected by ZeroMQ
        })
        self._later: queue.SimpleQueue = queue.SimpleQueue()
        self.requests = 0
        self.errors = 0
        self.too_large = 0  # requests over MAX_REQUEST, answered `too_large` (also counted in errors)
        self._last_error_log = 0.0
        self._unlogged_errors = 0

    def reply_later(self, request: Request, reply: dict) -> None:
        """Thread-safe: queue a reply for a deferred request; sent by the next `poll`."""
        self._later.put((request, reply))

    def poll(self, handler, timeout_ms: int = 100) -> None:
        """Wait up to `timeout_ms` for requests, answer them all, and send any deferred replies."""
        self._flush_later()
        if not self.sock.poll(timeout_ms, zmq.POLLIN):
            return
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._handle(frames, handler)
        self._flush_later()

    def _handle(self, frames: list, handler) -> None:
        # ROUTER frames: [identity, (empty delimiter)?, body]. REQ always sends the delimiter; we accept a
        # DEALER that forgot it, and mirror whatever envelope came.
        if len(frames) < 2:
            return
        if len(frames) >= 3 and frames[1] == b"":
            envelope, payload = frames[:2], frames[2:]
        else:
            envelope, payload = frames[:1], frames[1:]
        self.requests += 1
        request = None
        try:
            if len(payload) != 1:
                raise RequestError("bad_request", f"a request is one msgpack map, got {len(payload)} frames")
            if len(payload[0]) > MAX_REQUEST:
                self.too_large += 1
                raise RequestError("too_large", f"the request is {len(payload[0])} bytes, over the control "
                                                f"socket's limit of {MAX_REQUEST} bytes (1 MiB)")
            try:
                body = msgpack.unpackb(payload[0], raw=False, strict_map_key=False)
            except Exception as e:
                raise RequestError("bad_request", f"the request is not valid msgpack ({type(e).__name__})")
            if not isinstance(body, dict):
                raise RequestError("bad_request", f"a request must be a msgpack map, got {type(body).__name__}")
            request = Request(envelope, body)
            reply = handler(request)
        except RequestError as e:
            reply = error_reply(e.code, str(e), request.id if request else None)
        except Exception as e:  # a bug in a command must not take the daemon down
            reply = error_reply("internal", f"internal error: {type(e).__name__}: {e}",
                                request.id if request else None)
        if reply is DEFERRED:
            return
        self._send(envelope, reply, request)

    def _send(self, envelope, reply: dict, request: Request | None) -> None:
        if request is not None and request.id is not None and "id" not in reply:
            reply["id"] = request.id
        if not reply.get("ok", False):
            self.errors += 1
            self._log_error(reply, request)
        try:
            data = msgpack.packb(reply, use_bin_type=True)
        except Exception as e:
            data = msgpack.packb(error_reply("internal", f"reply could not be encoded: {e}"))
        try:
            self.sock.send_multipart(envelope + [data], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    def _log_error(self, reply: dict, request: Request | None) -> None:
        now = time.monotonic()
        if now - self._last_error_log < ERROR_LOG_INTERVAL:
            self._unlogged_errors += 1
            return
        cmd = request.body.get("cmd") if request is not None else None
        more = f" (+{self._unlogged_errors} more refused since the last line)" if self._unlogged_errors else ""
        log.info("control: refused %s [%s]: %s%s", cmd if isinstance(cmd, str) else "a request",
                 reply.get("code"), reply.get("error"), more)
        self._last_error_log, self._unlogged_errors = now, 0

    def _flush_later(self) -> None:
        while True:
            try:
                request, reply = self._later.get_nowait()
            except queue.Empty:
                return
            self._send(request.envelope, reply, request)

    def close(self) -> None:
        self.sock.close(linger=0)

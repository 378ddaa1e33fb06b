"""The JSON API (protocols/web.md): HTTP requests to the control command table — the same `dispatch` as the ZeroMQ
socket, one implementation, two encodings — and every refusal, aiohttp's own included, as our reply map.

Commands run on one "web-commands" worker thread: they are short and take the registry lock, as on the main
thread, and the event loop never waits on that lock. `load` and `unload` answer later: their reply resolves an
asyncio future on the web loop instead of queueing a ZeroMQ reply. Bodies are parsed with limits (bodies.py).
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

from aiohttp import web

from ..pose import BODY, BREATHING, EYE, EYEBROW, HEAD_NECK, IRIS_ROTATION, IRIS_SMALL, LOWER, MOUTH, \
    PARAMETER_NAMES, UPPER
from ..transport.control import DEFERRED, RequestError, error_reply
from . import bodies
from .link import DaemonLink
from .replies import STATUS, error_response as _error, json_response as _json

log = logging.getLogger("tha4bridge.web")
MAX_BODY = 1 << 20  # bytes, as the control socket's MAX_REQUEST
PATH_COMMANDS = ("load", "speak")  # commands that read a file the request names: off over HTTP by default
DEFERRED_TIMEOUT = 300.0  # seconds a `load` may take before the HTTP reply gives up (the load goes on)
BODY_TIMEOUT = 10.0  # s a request body may take to arrive
# The panel's slider groups, in the official manual poser's order (its tabs: eyebrow, eye, iris, mouth,
# then the rotations and breathing).
PANEL_GROUPS = (("eyebrow", EYEBROW), ("eye", EYE), ("iris", IRIS_SMALL), ("mouth", MOUTH),
                ("iris rotation", IRIS_ROTATION), ("head and neck", HEAD_NECK), ("body", BODY),
                ("breathing", slice(BREATHING, BREATHING + 1)))


class JsonApi:
    def __init__(self, link: DaemonLink, allow_load: bool, commands: Executor):
        """`allow_load`: PATH_COMMANDS over HTTP (serve --http-allow-load); `commands`: the one thread they run on."""
        self.link, self.allow_load, self._commands = link, allow_load, commands

    def routes(self, r) -> None:
        r.add_get("/api/hello", self._alias("hello"))
        r.add_get("/api/streams", self._alias("streams"))
        r.add_get("/api/stats", self._alias("stats"))
        r.add_get("/api/pose/{stream}", self._alias("get_pose"))
        r.add_get("/api/parameters", self._parameters)
        r.add_post("/api/command", self._command)
        r.add_post("/api/pose/{stream}", self._alias("set_pose", body=True))
        r.add_post("/api/release/{stream}", self._alias("release"))

    async def _parameters(self, request: web.Request) -> web.Response:
        groups = [{"group": g, "names": list(PARAMETER_NAMES[s])} for g, s in PANEL_GROUPS]
        return _json({"ok": True, "names": list(PARAMETER_NAMES), "lower": LOWER.tolist(),
                      "upper": UPPER.tolist(), "groups": groups, "commands": list(self.link.commands)})

    # --- the JSON API --------------------------------------------------------------------------------
    async def _command(self, request: web.Request) -> web.Response:
        body = await read_json(request, pose=False)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict):
            return _error("bad_request", f"a request must be a JSON object, got {type(body).__name__}")
        return await self.dispatch(body)

    def _alias(self, cmd: str, body: bool = False):
        """GET /api/streams and friends: the command `cmd`, with `stream` from the path."""
        async def handler(request: web.Request) -> web.Response:
            fields = {}
            if body:
                pose = await read_json(request, pose=True)
                if isinstance(pose, web.Response):
                    return pose
                fields = {"pose": pose}
            if "stream" in request.match_info:
                fields["stream"] = request.match_info["stream"]
            if "hold" in request.query:
                try:
                    fields["hold"] = float(request.query["hold"])
                except ValueError:
                    return _error("bad_request", "'hold' must be a number of seconds >= 0")
            return await self.dispatch({**fields, "cmd": cmd})

        return handler

    async def dispatch(self, body: dict) -> web.Response:
        """A JSON request to the command table, answered with the reply map and its HTTP status."""
        if body.get("cmd") in PATH_COMMANDS and not self.allow_load:
            return _error("forbidden", f"'{body['cmd']}' (a file path on this machine) over HTTP is off; start "
                                       "serve with --http-allow-load to allow it", body.get("id"))
        reply = await self.command(body)
        if body.get("id") is not None:
            reply.setdefault("id", body["id"])
        status = 200 if reply.get("ok") else STATUS.get(reply.get("code"), 500)
        return _json(reply, status)

    async def command(self, body: dict) -> dict:
        """The command table's reply map for `body` (refusals as error maps), run on the web-commands thread;
        a deferred reply (load, unload) is awaited here."""
        loop = asyncio.get_running_loop()
        later = loop.create_future()

        def reply_later(reply: dict) -> None:  # a loader or the render thread
            loop.call_soon_threadsafe(lambda: later.done() or later.set_result(reply))

        def run():  # on the web-commands thread
            try:
                return self.link.dispatch(body, reply_later)
            except RequestError as e:  # HTTP callers get the public sentence where there is one (speak)
                return error_reply(e.code, e.public or str(e))
            except Exception as e:  # a bug in a command must not take the server down
                log.exception("web: command %r failed", body.get("cmd"))
                return error_reply("internal", f"internal error: {type(e).__name__}: {e}")

        reply = await loop.run_in_executor(self._commands, run)
        if reply is not DEFERRED:
            return reply
        try:
            return await asyncio.wait_for(later, DEFERRED_TIMEOUT)
        except asyncio.TimeoutError:
            return error_reply("internal", f"no reply within {DEFERRED_TIMEOUT:.0f} s")


class Handler(web.RequestHandler):
    """aiohttp's per-connection handler, answering what it cannot parse (a malformed request line or header,
    an oversized one) with our reply map instead of its plain-text message, which quotes the client's bytes."""

    __slots__ = ()

    def handle_error(self, request, status: int = 500, exc=None, message=None) -> web.StreamResponse:
        self.logger.exception("refused a request that could not be parsed", exc_info=exc)  # QuietLog: one line
        if request.writer.output_size > 0:  # part of a response went out: nothing more can be said
            raise ConnectionError("a response was already under way")
        if status == 400:
            response = _error("bad_request", "this is not an HTTP request this server can read (a malformed or "
                                             "oversized request line or header)")
        elif status == 504:
            response = _error("timeout", "the request took too long")
        else:
            response = _error("internal", "internal error: the daemon's log says more")
        response.set_status(status)
        response.force_close()
        return response


def http_error(e: web.HTTPException, request: web.Request) -> web.Response:
    """aiohttp's refusal as our reply map: our code and sentence instead of its text."""
    path = request.path[:80]
    if e.status == 404:
        response = _error("not_found", f"nothing here: {path!r} is not a page or route of this server")
    elif e.status == 405:
        response = _error("not_allowed", f"{path!r} does not take {request.method[:10]} requests")
        response.headers["Allow"] = e.headers.get("Allow", "")
    elif e.status == 413:
        response = _error("too_large", f"the request body is over the limit of {MAX_BODY} bytes (1 MiB)")
    elif request.path.startswith("/ws/"):
        response = _error("bad_request", f"{path!r} is a WebSocket: open it with a WebSocket handshake")
    else:
        response = _error("bad_request", "this request cannot be answered (a malformed or unsupported request)")
    return response


async def read_json(request: web.Request, pose: bool):
    """The request body as JSON (bodies.parse: depth and number limits), or the error response that refuses it."""
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error("too_large", f"the request body is over the limit of {MAX_BODY} bytes (1 MiB)")
    except TimeoutError:
        response = _error("timeout", f"the request body did not arrive within {BODY_TIMEOUT:.0f} s")
        response.force_close()
        return response
    try:
        return bodies.parse(data, pose=pose)
    except bodies.BodyError as e:
        return _error(e.code, str(e))

"""The HTTP/WebSocket server (protocols/web.md): pages, the frame WebSocket and the JSON API.

It runs an aiohttp application on its own thread and event loop, next to the frame sink and the command
table; the daemon only starts and stops it, and hands it what it needs (`DaemonLink`: web/ imports nothing from
daemon/). Frames arrive through `FrameFeed` (a sink listener that never blocks the render thread). JSON
requests go through the same `dispatch` as the ZeroMQ socket — one implementation, two encodings — on one
"web-commands" worker thread: commands are short and take the registry lock, as they do on the main thread,
and the event loop never waits on that lock. `load` and `unload` answer later: their reply resolves an asyncio
future on this loop instead of queueing a ZeroMQ reply.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSMsgType, web

from ..defaults import DEMO
from ..pose import BODY, BREATHING, EYE, EYEBROW, HEAD_NECK, IRIS_ROTATION, IRIS_SMALL, LOWER, MOUTH, \
    PARAMETER_NAMES, UPPER
from ..transport.control import DEFERRED, RequestError, error_reply
from .address import is_loopback
from .feed import ENCODINGS, FrameFeed, encode
from .link import DaemonLink
from .local import BrowserRuntime
from .replies import STATUS, error_response as _error, json_response as _json

log = logging.getLogger("tha4bridge.web")
PAGES = Path(__file__).parent / "pages"
MAX_BODY = 1 << 20  # bytes, as the control socket's MAX_REQUEST
PATH_COMMANDS = ("load", "speak")  # commands that read a file the request names: off over HTTP by default
DEFERRED_TIMEOUT = 300.0  # seconds a `load` may take before the HTTP reply gives up (the load goes on)
# The panel's slider groups, in the official manual poser's order (its tabs: eyebrow, eye, iris, mouth,
# then the rotations and breathing).
PANEL_GROUPS = (("eyebrow", EYEBROW), ("eye", EYE), ("iris", IRIS_SMALL), ("mouth", MOUTH),
                ("iris rotation", IRIS_ROTATION), ("head and neck", HEAD_NECK), ("body", BODY),
                ("breathing", slice(BREATHING, BREATHING + 1)))


@dataclass
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 0
    allow_load: bool = False  # PATH_COMMANDS over HTTP (a browser could otherwise make us read any file)
    token: str | None = None  # None: generated when bound beyond loopback, unused on loopback
    ort_web: str | None = None  # `--ort-web DIR`: a local onnxruntime-web for /local/ (else the CDN)


class WebServer:
    def __init__(self, link: DaemonLink, config: WebConfig):
        self.link, self.config = link, config
        self.loopback = is_loopback(config.host)
        self.token = None if self.loopback else (config.token or secrets.token_urlsafe(16))
        self.feed = FrameFeed()
        self.local = BrowserRuntime(self, config.ort_web)
        self.port = config.port
        self.requests = 0
        self._commands = ThreadPoolExecutor(1, thread_name_prefix="web-commands")
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="web-encoder")  # one encode per frame/format
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    # --- life cycle (called from the daemon's main thread) --------------------------------------------
    def start(self) -> None:
        """Bind and serve; OSError with one sentence when the address cannot be bound."""
        started, failure = threading.Event(), []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._bind())
            except Exception as e:
                failure.append(e)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="web", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise OSError(f"--http {self.config.host}:{self.config.port}: cannot listen there ({failure[0]})")
        self.feed.loop = self._loop
        self.link.listeners.append(self.feed)

    async def _bind(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        r = app.router
        r.add_get("/", self._page("index.html"))
        r.add_get("/view/{stream}", self._page("view.html"))
        r.add_get("/panel/{stream}", self._page("panel.html"))
        r.add_get("/ws/frames/{stream}", self._frames)
        self.local.routes(r, self._page)  # the browser runtime (since 1.2): page, model, onnxruntime-web, poses
        r.add_get("/api/hello", self._alias("hello"))
        r.add_get("/api/streams", self._alias("streams"))
        r.add_get("/api/stats", self._alias("stats"))
        r.add_get("/api/pose/{stream}", self._alias("get_pose"))
        r.add_get("/api/parameters", self._parameters)
        r.add_post("/api/command", self._command)
        r.add_post("/api/pose/{stream}", self._alias("set_pose", body=True))
        r.add_post("/api/release/{stream}", self._alias("release"))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            return
        if self.feed in self.link.listeners:
            self.link.listeners.remove(self.feed)
        try:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        except Exception as e:
            log.info("web server stop: %s", e)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._commands.shutdown(wait=False, cancel_futures=True)
        self._encoder.shutdown(wait=False, cancel_futures=True)

    async def _close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        await self._runner.cleanup()

    def stream(self, name: str):
        """The running stream `name`, or None."""
        return self.link.find(name)

    def urls(self) -> list[str]:
        """The banner's lines: where the pages are (with the token when one is needed)."""
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "<this computer's address>"
        host = f"[{host}]" if ":" in host else host
        q = f"?token={self.token}" if self.token else ""
        base = f"http://{host}:{self.port}"
        lines = [f"  http: {base}/{q}"]
        for name in self.link.names():
            line = f"  OBS browser source ({name}): {base}/view/{name}{q}   panel: {base}/panel/{name}{q}"
            stream = self.stream(name)
            if stream is not None and stream.spec != DEMO:  # a student: it can also run in the browser
                line += f"   in the browser: {base}/local/{name}{q}"
            lines.append(line)
        if self.token:
            lines.append(f"  http token: {self.token} (bound beyond loopback: every request needs it)")
        return lines

    # --- who may ask (protocols/web.md, "Who may do what") ----------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler):
        self.requests += 1
        host = request.headers.get("Host", "")
        if self.loopback and not is_loopback(_host_name(host)):
            # DNS rebinding: a foreign name resolving to 127.0.0.1 must not reach a loopback-only server.
            return _error("forbidden", f"the Host header {host!r} is not this computer's loopback name")
        if self.token is not None:
            given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return _error("unauthorized", "this server is reachable from the network: add ?token= "
                                              "(printed by `serve`) to the URL")
        changes = request.method != "GET" or request.path.startswith("/ws/")
        origin = request.headers.get("Origin")
        if changes and origin is not None and origin != f"http://{host}":
            return _error("forbidden", f"requests from the page {origin!r} may not drive this daemon; "
                                       "only its own pages and non-browser clients may")
        return await handler(request)

    # --- pages ---------------------------------------------------------------------------------------
    def _page(self, name: str, headers: dict | None = None):
        headers = {"Cache-Control": "no-cache", **(headers or {})}

        async def handler(request: web.Request) -> web.StreamResponse:
            stream = request.match_info.get("stream")
            if stream is not None and stream not in self.link.names():
                return _error("unknown_stream", f"no stream named {stream!r}")
            return web.FileResponse(PAGES / name, headers=headers)

        return handler

    async def _parameters(self, request: web.Request) -> web.Response:
        groups = [{"group": g, "names": list(PARAMETER_NAMES[s])} for g, s in PANEL_GROUPS]
        return _json({"ok": True, "names": list(PARAMETER_NAMES), "lower": LOWER.tolist(),
                      "upper": UPPER.tolist(), "groups": groups, "commands": list(self.link.commands)})

    # --- the JSON API --------------------------------------------------------------------------------
    async def _command(self, request: web.Request) -> web.Response:
        body = await _read_json(request)
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
                pose = await _read_json(request)
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
        if body.get("cmd") in PATH_COMMANDS and not self.config.allow_load:
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
            except RequestError as e:
                return error_reply(e.code, str(e))
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

    # --- frames --------------------------------------------------------------------------------------
    async def _frames(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["stream"]
        fmt = request.query.get("format", "rgba")
        if fmt not in ENCODINGS:
            return _error("bad_request", f"'format' must be one of {', '.join(ENCODINGS)}, got {fmt!r}")
        if name not in self.link.names():
            return _error("unknown_stream", f"no stream named {name!r}")
        loop = asyncio.get_running_loop()
        last = None

        async def send(ws: web.WebSocketResponse) -> None:
            nonlocal last
            frame = self.feed.newest(name)
            if frame is None or frame is last or frame.pixels is None:  # None: kept for pose watchers only
                return
            last = frame
            data = await loop.run_in_executor(self._encoder, encode, frame, fmt)
            # Waits only for this client's socket; meanwhile newer frames replace `frame` in the feed.
            await ws.send_bytes(data)

        return await self.watch(request, name, send, pixels=True)

    async def watch(self, request: web.Request, name: str, send, pixels: bool, first=None
                    ) -> web.WebSocketResponse:
        """A WebSocket that watches stream `name`'s frames: `first(ws)` once, then `send(ws)` whenever the feed
        has a new frame, until the client goes. The client's own messages are read (its close and pings)."""
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 16)
        await ws.prepare(request)
        self._sockets.add(ws)
        event = asyncio.Event()
        self.feed.watch(name, event, pixels=pixels)
        self.link.wake()  # a viewer now counts as a subscriber: full rate from the next pass
        reader = asyncio.ensure_future(self._drain(ws))  # handles the client's close and pings
        try:
            if first is not None:
                await first(ws)
            while not ws.closed and not reader.done():
                waiter = asyncio.ensure_future(event.wait())
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                event.clear()
                await send(ws)
        except (ConnectionError, RuntimeError):  # the client went away mid-send
            pass
        finally:
            self.feed.unwatch(name, event, pixels=pixels)
            reader.cancel()
            self._sockets.discard(ws)
            await ws.close()
        return ws

    @staticmethod
    async def _drain(ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                return


async def _read_json(request: web.Request):
    """The request body as JSON, or the error response that refuses it."""
    try:
        return json.loads(await request.read())
    except web.HTTPRequestEntityTooLarge:
        return _error("too_large", f"the request body is over the limit of {MAX_BODY} bytes (1 MiB)")
    except (ValueError, UnicodeDecodeError) as e:
        return _error("bad_request", f"the request body is not valid JSON ({e})")


def _host_name(host: str) -> str:
    """`127.0.0.1:8080` → `127.0.0.1`, `[::1]:8080` → `::1`."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host

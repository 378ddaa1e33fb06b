"""The HTTP/WebSocket server (protocols/web.md): pages, the frame WebSocket, and the JSON API (api.py).

It runs an aiohttp application on its own thread and event loop, next to the frame sink and the command
table; the daemon only starts and stops it, and hands it what it needs (`DaemonLink`: web/ imports nothing from
daemon/). Frames arrive through `FrameFeed` (a sink listener that never blocks the render thread).
Hostile clients (protocols/web.md, "Limits"; limits.py): a cap on open connections and aiohttp's idle/header
timeout before any request is looked at, a budget per connection (requests, WebSocket messages), the loop
thread held to a share of a core, bodies parsed with limits (bodies.py), one rate-limited log line per
condition, and malloc_trim after a large fan-out.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http import WebSocketWriter

from ..defaults import DEMO
from .address import host_name, is_loopback
from .api import MAX_BODY, Handler, JsonApi, http_error
from .feed import ENCODINGS, FrameFeed, encode
from .limits import Budget, Connections, Governor, QuietLog, RateLog, connection_cap, trim_memory
from .link import DaemonLink
from .local import BrowserRuntime
from .replies import error_response as _error

log = logging.getLogger("tha4bridge.web")
PAGES = Path(__file__).parent / "pages"
IDLE_TIMEOUT = 10.0  # s a connection may stay without a whole request (aiohttp's keepalive_timeout: its
# headers, or the next request on a kept-alive connection)
REQUEST_RATE, REQUEST_BURST = 100.0, 200.0  # HTTP requests a second on one connection (the panel's sliders
# send far fewer); over: 429 `rate_limited` and the connection is closed
WS_MESSAGE_RATE, WS_MESSAGE_BURST = 20.0, 50.0  # messages (pings included) a second a client may send on a
# frame or pose WebSocket, which need none; over: closed with 1008 (policy violation)
WS_MAX_MESSAGE = 1 << 16  # bytes; a bigger message closes the socket with 1009 (aiohttp)
WS_CLOSE_WAIT = 1.0  # s to wait for the client's answer to our close frame
SEND_STALL = 30.0  # s a WebSocket send may wait for a client that reads nothing; then the socket is closed
FLOOD_PENALTY = 5.0  # s a flooding WebSocket is held, unread, after its close frame, before it is cut off
SEND_BUFFER = 256 << 10  # bytes: a frame WebSocket's kernel send buffer (the kernel doubles it)
UNLOADED = 4404  # the close code of a stream's WebSockets when the stream is unloaded
TRIM_AFTER = 64  # connections: after a fan-out this large falls to half, malloc_trim gives the memory back


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
        self.api = JsonApi(link, config.allow_load, self._commands)
        self.command = self.api.command  # the command table's reply map for a body (local.py asks get_pose)
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._watches: dict[str, set] = {}  # stream -> its WebSockets' _Watch (closed when it is unloaded)
        self.rate_log = RateLog(log)
        self.connections: Connections | None = None
        self.governor: Governor | None = None
        self._trim: asyncio.TimerHandle | None = None
        self.trims = 0

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
        self.feed.ended = self._stream_ended
        self.link.listeners.append(self.feed)

    async def _bind(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        r = app.router
        r.add_get("/", self._page("index.html"))
        r.add_get("/view/{stream}", self._page("view.html"))
        r.add_get("/panel/{stream}", self._page("panel.html"))
        r.add_get("/ws/frames/{stream}", self._frames)
        self.local.routes(r, self._page)  # the browser runtime (since 1.2): page, model, onnxruntime-web, poses
        self.api.routes(r)  # /api/: the JSON API over the command table (api.py)
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_error)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=IDLE_TIMEOUT,
                                     logger=QuietLog(self.rate_log))
        await self._runner.setup()
        self.connections = Connections(self._runner.server, connection_cap(), self.rate_log, self._dropped,
                                       Handler)
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=128)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.governor = Governor(loop, self.rate_log)
        self.governor.start()

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
        if self.governor is not None:
            self.governor.stop()
        await asyncio.gather(*(ws.close() for ws in list(self._sockets)), return_exceptions=True)
        await self._runner.cleanup()

    def _loop_error(self, loop, context: dict) -> None:
        """The loop's own errors (asyncio's "socket.accept() out of system resource" when the process runs out of
        files, a transport's error): one line per kind per interval, no traceback."""
        exc = context.get("exception")
        message = str(context.get("message", "error"))
        self.rate_log.say("loop:" + message[:40], f"web: {message}" + (f": {exc}" if exc is not None else ""))

    def _dropped(self, connections: Connections) -> None:
        """A connection closed: once a large fan-out has fallen to half, give the freed memory back 1 s after the
        last close (a burst of closes moves the moment on, so the trim sees them all)."""
        if connections.peak >= TRIM_AFTER and len(connections) <= connections.peak // 2:
            if self._trim is not None:
                self._trim.cancel()
            self._trim = self._loop.call_later(1.0, self._trim_now)

    def _trim_now(self) -> None:
        """glibc keeps the pages of freed buffers (200 viewers' 1 MiB frames) in its arenas: malloc_trim(0)
        hands them back (on the encoder thread: it takes milliseconds, without the interpreter lock)."""
        self._trim = None
        peak, self.connections.peak = self.connections.peak, len(self.connections)
        self.trims += 1
        self.rate_log.say("trim", f"web: {peak} connections fell to {len(self.connections)}: freed memory goes back "
                                  "to the system (malloc_trim)", logging.INFO)
        self._loop.run_in_executor(self._encoder, trim_memory)

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
        conn = self.connections.served(request.protocol) if self.connections is not None else None
        if conn is not None:
            if conn.budget is None:
                conn.budget = Budget(REQUEST_RATE, REQUEST_BURST)
            if not conn.budget.take():
                self.rate_log.say("requests", f"web: a connection sent over {REQUEST_RATE:.0f} requests a second: "
                                              "refused (429) and closed")
                response = _error("rate_limited", f"this connection sent over {REQUEST_RATE:.0f} requests a "
                                                  "second; slow down")
                response.force_close()
                return response
        host = request.headers.get("Host", "")
        name = host_name(host)
        if self.loopback and (name is None or not is_loopback(name)):
            # DNS rebinding: a foreign name resolving to 127.0.0.1 must not reach a loopback-only server.
            return _error("forbidden", f"the Host header {host[:80]!r} is not this computer's loopback name")
        if name is None and "Host" in request.headers:
            return _error("bad_request", f"the Host header {host[:80]!r} is not a host name")
        if self.token is not None:
            given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return _error("unauthorized", "this server is reachable from the network: add ?token= "
                                              "(printed by `serve`) to the URL")
        changes = request.method != "GET" or request.path.startswith("/ws/")
        origin = request.headers.get("Origin")
        if changes and origin is not None and origin != f"http://{host}":
            return _error("forbidden", f"requests from the page {origin[:80]!r} may not drive this daemon; "
                                       "only its own pages and non-browser clients may")
        try:
            return await handler(request)
        except web.HTTPException as e:  # aiohttp's own refusals (no route, wrong method, not a WebSocket...)
            if e.status < 400:
                raise
            return http_error(e, request)

    # --- pages ---------------------------------------------------------------------------------------
    def _page(self, name: str, headers: dict | None = None):
        headers = {"Cache-Control": "no-cache", **(headers or {})}

        async def handler(request: web.Request) -> web.StreamResponse:
            stream = request.match_info.get("stream")
            if stream is not None and stream not in self.link.names():
                return _error("unknown_stream", f"no stream named {stream!r}")
            return web.FileResponse(PAGES / name, headers=headers)

        return handler

    # --- frames --------------------------------------------------------------------------------------
    async def _frames(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["stream"]
        fmt = request.query.get("format", "rgba")
        if fmt not in ENCODINGS:
            return _error("bad_request", f"'format' must be one of {', '.join(ENCODINGS)}, got {fmt!r}")
        if name not in self.link.names():
            return _error("unknown_stream", f"no stream named {name!r}")
        loop = asyncio.get_running_loop()
        last = None  # the seq sent last (not the frame: a closed socket's task must not keep 2 MiB alive)

        async def send(ws: web.WebSocketResponse) -> None:
            nonlocal last
            frame = self.feed.newest(name)
            if frame is None or frame.header["seq"] == last or frame.pixels is None:  # None: for pose watchers
                return
            last = frame.header["seq"]
            data = await loop.run_in_executor(self._encoder, encode, frame, fmt)
            del frame
            # Waits only for this client's socket; meanwhile newer frames replace `frame` in the feed.
            await self.send(ws, data)

        return await self.watch(request, name, send, pixels=True)

    async def send(self, ws: web.WebSocketResponse, data: bytes | str) -> None:
        """Send one message; a client that has read nothing for SEND_STALL s is cut off (its buffers freed)."""
        try:  # asyncio.timeout, not wait_for: no inner task to keep the message alive in a reference cycle
            async with asyncio.timeout(SEND_STALL):
                await (ws.send_bytes(data) if isinstance(data, bytes) else ws.send_str(data))
        except TimeoutError:
            self.rate_log.say("stall", f"web: closed a WebSocket whose client read nothing for {SEND_STALL:.0f} s")
            raise ConnectionResetError("stalled") from None

    async def watch(self, request: web.Request, name: str, send, pixels: bool, first=None
                    ) -> web.WebSocketResponse:
        """A WebSocket that watches stream `name`'s frames: `first(ws)` once, then `send(ws)` whenever the feed
        has a new frame, until the client goes or the stream is unloaded (closed with UNLOADED). The client's
        own messages are read within a budget (its close and pings; a flood closes it)."""
        ws = web.WebSocketResponse(heartbeat=None, autoping=False, max_msg_size=WS_MAX_MESSAGE, timeout=WS_CLOSE_WAIT)
        await ws.prepare(request)
        sock = request.transport.get_extra_info("socket") if request.transport is not None else None
        if pixels and sock is not None:
            # A fixed kernel send buffer: autotuned, it grows to megabytes, so a viewer that never reads would
            # take several 1 MiB frames (copied, held) before its sends wait — and a slow one would see old frames.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self._sockets.add(ws)
        watch = _Watch()
        self._watches.setdefault(name, set()).add(watch)
        self.feed.watch(name, watch.event, pixels=pixels)
        self.link.wake()  # a viewer now counts as a subscriber: full rate from the next pass
        reader = asyncio.ensure_future(self._read(ws, request))  # the client's close and pings, within a budget
        if name not in self.link.names():  # unloaded between the route's check and now
            watch.ended = True
        try:
            if first is not None and not watch.ended:
                await first(ws)
            while not ws.closed and not reader.done() and not watch.ended:
                waiter = asyncio.ensure_future(watch.event.wait())
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                watch.event.clear()
                if watch.ended or reader.done():
                    break
                await send(ws)
            if watch.ended and not ws.closed:
                await ws.close(code=UNLOADED, message=f"stream {name[:80]!r} was unloaded".encode()[:120])
        except (ConnectionError, RuntimeError) as e:  # the client went away mid-send, or stalled: no handshake
            # aiohttp keeps the exception (its traceback's frames hold the frame being sent, 1 MiB) in reference
            # cycles that only the collector's oldest generation would free: drop those frames' locals now.
            traceback.clear_frames(e.__traceback__)
            if request.transport is not None:
                request.transport.close()
        finally:
            self.feed.unwatch(name, watch.event, pixels=pixels)
            watchers = self._watches.get(name)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self._watches[name]
            reader.cancel()
            self._sockets.discard(ws)
            if reader.done() and not reader.cancelled() and reader.result() is True:
                await self._penalty(request)  # cut off for flooding: not ws.close(), which reads the flood
            else:
                await ws.close()
        return ws

    def _stream_ended(self, name: str) -> None:
        """The feed heard that stream `name` was unloaded (on this loop): its WebSockets close."""
        for watch in self._watches.get(name, ()):
            watch.ended = True
            watch.event.set()

    async def _read(self, ws: web.WebSocketResponse, request: web.Request) -> bool | None:
        """What a frame or pose WebSocket's client sends: pings are answered, anything else dropped; more than
        WS_MESSAGE_RATE a second (WS_MESSAGE_BURST at once) closes the socket with 1008 (`_cut_off`; then
        True)."""
        budget = Budget(WS_MESSAGE_RATE, WS_MESSAGE_BURST)
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            if not budget.take():
                self.rate_log.say("ws-flood", f"web: closed a WebSocket whose client sent over "
                                              f"{WS_MESSAGE_RATE:.0f} messages a second (1008)")
                await self._cut_off(request, WSCloseCode.POLICY_VIOLATION,
                                    f"this socket takes no messages: over {WS_MESSAGE_RATE:.0f} a second close it")
                return True
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)

    async def _cut_off(self, request: web.Request, code: int, reason: str) -> None:
        """Close a flooding WebSocket at no further cost: stop reading (the flood stays in the flooder's TCP
        window) and send the close frame (aiohttp's frame writer); `_penalty` ends the connection. Not
        `ws.close()`: it would first read every message already buffered (~20,000 of `{"a":1}` in one 256 KiB
        read) and wait for the client's answer, reading on."""
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        transport.pause_reading()
        try:
            await asyncio.wait_for(WebSocketWriter(request.protocol, transport).close(code, reason), WS_CLOSE_WAIT)
        except (ConnectionError, RuntimeError, asyncio.TimeoutError):
            pass

    @staticmethod
    async def _penalty(request: web.Request) -> None:
        """A cut-off connection stays unread for FLOOD_PENALTY s, then ends: a flooder that reconnected at once
        would make us pay a handshake and a socket buffer of messages many times a second."""
        try:
            await asyncio.sleep(FLOOD_PENALTY)
        finally:
            if request.transport is not None:
                request.transport.abort()


class _Watch:
    __slots__ = ("event", "ended")

    def __init__(self):
        self.event, self.ended = asyncio.Event(), False

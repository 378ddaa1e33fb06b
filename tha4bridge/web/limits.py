"""What keeps one client from costing more than its own connection (protocols/web.md, "Limits").

  Budget        a token bucket: a connection's requests or WebSocket messages per second.
  RateLog       one log line per condition per interval, with how many more happened meanwhile.
  QuietLog      what aiohttp's request handlers log through: one line, never a traceback per request.
  Connections   the cap on open connections (aiohttp has none): over it, the oldest connection that has not
                sent a whole request yet is closed (a slowloris' half-open ones), else the new one.
  Governor      the web thread's share of a core: above it the thread sleeps, so rendering, which needs the
                same interpreter lock, keeps its pace whatever a client sends.
  trim_memory   glibc's malloc_trim(0) after a large fan-out: gives freed pages back to the system.

aiohttp does the rest itself: the idle and header timeout (`keepalive_timeout`, which also closes a connection
that never sends a whole request), header sizes, the body and WebSocket message limits.
"""
from __future__ import annotations

import ctypes
import logging
import resource
import socket
import time

log = logging.getLogger("tha4bridge.web")

LOG_INTERVAL = 10.0  # s: at most one line per condition per this
MAX_CONNECTIONS = 512  # open HTTP/WebSocket connections, at most; lower when the process may open fewer files
FD_RESERVE = 256  # files kept for everything else (ZeroMQ, rings, models) when the cap comes from the fd limit
WEB_CPU_SHARE = 0.4  # of one core, for the event-loop thread, measured over GOVERNOR_PERIOD
GOVERNOR_PERIOD = 0.02  # s
RECEIVE_BUFFER = 64 << 10  # bytes: each connection's kernel receive buffer (requests and bodies are small)


class Budget:
    """A token bucket: `rate` per second, up to `burst` at once."""

    __slots__ = ("rate", "burst", "tokens", "t")

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst, self.tokens, self.t = rate, burst, burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class RateLog:
    """`say(condition, message)`: the first time a condition happens in an interval it is logged; later ones are
    counted and added to the next line ("+N more")."""

    def __init__(self, logger: logging.Logger = log, interval: float = LOG_INTERVAL):
        self.logger, self.interval = logger, interval
        self._last: dict[str, float] = {}
        self._more: dict[str, int] = {}

    def say(self, condition: str, message: str, level: int = logging.WARNING) -> bool:
        now = time.monotonic()
        if now - self._last.get(condition, -1e9) < self.interval:
            self._more[condition] = self._more.get(condition, 0) + 1
            return False
        more = self._more.pop(condition, 0)
        suffix = f" (+{more} more in the last {self.interval:.0f} s)" if more else ""
        self._last[condition] = now
        self.logger.log(level, "%s%s", message, suffix)
        return True


class QuietLog:
    """aiohttp's RequestHandler `logger=`: a malformed request, a client that vanished mid-request, are logged
    as one rate-limited line with the exception's type, never a traceback per request."""

    def __init__(self, rate_log: RateLog):
        self.rate_log = rate_log

    def _line(self, msg, args, kw, level) -> None:
        try:
            text = str(msg) % args if args else str(msg)
        except Exception:
            text = str(msg)
        exc = kw.get("exc_info")
        if isinstance(exc, BaseException):
            text += f" ({type(exc).__name__})"
        self.rate_log.say("aiohttp:" + str(msg)[:40], "web: " + text[:200], level)

    def exception(self, msg, *args, **kw) -> None:
        self._line(msg, args, kw, logging.INFO)

    def error(self, msg, *args, **kw) -> None:
        self._line(msg, args, kw, logging.INFO)

    def warning(self, msg, *args, **kw) -> None:
        self._line(msg, args, kw, logging.INFO)

    def info(self, msg, *args, **kw) -> None:
        pass

    def debug(self, msg, *args, **kw) -> None:
        pass

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return level >= logging.INFO


def connection_cap() -> int:
    """MAX_CONNECTIONS, or fewer when the fd limit would not leave FD_RESERVE files for the rest."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, (soft - FD_RESERVE) // 2, soft - FD_RESERVE))


class _Conn:
    __slots__ = ("transport", "served", "budget")

    def __init__(self, transport):
        self.transport, self.served, self.budget = transport, False, None


class Connections:
    """The open connections of one aiohttp `web.Server`, hooked into its per-connection calls
    (`connection_made`, `connection_lost`); `served(handler)` marks one that sent a whole request."""

    def __init__(self, server, cap: int, rate_log: RateLog, on_drop=None, handler_class=None):
        """`handler_class`: a subclass of aiohttp's RequestHandler without new slots (its own `handle_error`)
        that each connection's handler becomes — aiohttp's Server always makes a plain RequestHandler."""
        self.cap, self.rate_log, self.on_drop = cap, rate_log, on_drop
        self._open: dict = {}  # RequestHandler -> _Conn, oldest first
        self.peak = 0  # the most open since the last drop (a fan-out burst to give memory back after)
        self.shed = 0  # connections closed because of the cap
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler, transport) -> None:
            if handler_class is not None:
                handler.__class__ = handler_class
            made(handler, transport)
            sock = transport.get_extra_info("socket")
            if sock is not None:  # what a client may send ahead of our reading waits in its own buffers
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            self._open[handler] = _Conn(transport)
            self.peak = max(self.peak, len(self._open))
            if len(self._open) > self.cap:
                self._over_cap(handler)

        def connection_lost(handler, exc) -> None:
            lost(handler, exc)
            self._open.pop(handler, None)
            if self.on_drop is not None:
                self.on_drop(self)

        server.connection_made, server.connection_lost = connection_made, connection_lost

    def __len__(self) -> int:
        return len(self._open)

    def get(self, handler) -> _Conn | None:
        return self._open.get(handler)

    def served(self, handler) -> _Conn | None:
        conn = self._open.get(handler)
        if conn is not None:
            conn.served = True
        return conn

    def _over_cap(self, new) -> None:
        # The oldest connection that never sent a whole request goes first; only when every one has (viewers,
        # API clients) is the new one refused.
        victim = next((h for h, c in self._open.items() if not c.served and h is not new), new)
        conn = self._open.pop(victim)
        self.shed += 1
        conn.transport.abort()
        which = "the new one" if victim is new else "the oldest that had not sent a request"
        self.rate_log.say("cap", f"web: {self.cap} connections open (the limit): closed {which}")


class Governor:
    """Keeps the event-loop thread under `share` of a core: every `period` it compares its own CPU time with
    the wall time and, when over, sleeps the difference (releasing the interpreter lock to the render thread).
    A flood then slows this thread, and the flooder's TCP window, not the frames."""

    def __init__(self, loop, rate_log: RateLog, share: float = WEB_CPU_SHARE, period: float = GOVERNOR_PERIOD):
        self.loop, self.rate_log, self.share, self.period = loop, rate_log, share, period
        self.slept = 0.0  # s, in total (stats, tests)
        self._handle = None
        self._w = self._c = 0.0

    def start(self) -> None:  # on the loop's thread
        self._w, self._c = time.monotonic(), time.thread_time()
        self._handle = self.loop.call_later(self.period, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _tick(self) -> None:
        w, c = time.monotonic(), time.thread_time()
        over = (c - self._c) / self.share - (w - self._w)
        if over > 0.001:
            pause = min(over, 5 * self.period)
            time.sleep(pause)
            self.slept += pause
            self.rate_log.say("governor", f"web: the web thread is busy (a flood?): it is held to "
                                          f"{self.share:.0%} of a core so that rendering keeps its pace",
                              logging.INFO)
            w, c = time.monotonic(), time.thread_time()
        self._w, self._c = w, c
        self._handle = self.loop.call_later(self.period, self._tick)


def _malloc_trim():
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim  # glibc only; musl and others lack it
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def trim_memory() -> bool:
    """Give the heap's free pages back to the system (glibc keeps them after a burst of large buffers: 200
    viewers' frames). Call it off the event loop: it takes milliseconds, without the interpreter lock."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True

"""A real daemon with `--http`, and the two ways tests talk to it: JSON over HTTP, frames over WebSocket."""
from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp

from tests.daemon.util import Served
from tha4bridge.web.feed import decode


class WebServed(Served):
    """`port`: 0 (default) lets the daemon bind an OS-chosen port, read back from its banner's `http:` line; a
    test that must come back on the same port (a restart) passes the one the first daemon got."""

    def __init__(self, *args, log_dir: Path, host: str = "127.0.0.1", port: int = 0, **kw):
        super().__init__("--http", f"{host}:{port}", *args, log_dir=log_dir, **kw)
        deadline = time.monotonic() + 30
        # the host part may be words ("<this computer's address>" when bound to every interface): the port is
        # the last ":digits/" of the line
        while (m := re.search(r"^  http: http://.*:(\d+)/", self.log.read_text(), re.M)) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"the daemon printed no `http:` line (its web side did not start); its log:\n"
                                   f"{self.log.read_text()}")
            time.sleep(0.05)  # polling the log file: the banner's http line is the event waited for
        self.port = int(m.group(1))
        self.base = f"http://127.0.0.1:{self.port}"
        # the urls are printed in one piece, so the token line (bound beyond loopback) is there with the http line
        t = re.search(r"http token: (\S+)", self.log.read_text())
        self.token = t.group(1) if t else None


def http(base: str, method: str, path: str, body=None, headers: dict | None = None, raw: bytes | None = None):
    """(status, decoded JSON reply)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def ws_frames(url: str, count: int, timeout: float = 30.0) -> list[tuple[dict, bytes]]:
    """The next `count` WebSocket frames of `url`, decoded by protocols/web.md."""
    out = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, max_msg_size=0) as ws:
            while len(out) < count:
                msg = await asyncio.wait_for(ws.receive(), timeout)
                assert msg.type == aiohttp.WSMsgType.BINARY, msg
                out.append(decode(msg.data))
    return out


class Pusher:
    """Changes the pose every `period` seconds (as a tracker would), so that frames keep coming."""

    def __init__(self, control: str, period: float = 0.05):
        import threading

        from tha4bridge.client import Control

        self.ctl, self.period = Control(control, timeout=5.0), period
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.wait(self.period):
            i += 1
            self.ctl.request("set_pose", stream="demo", pose={"mouth_aaa": (i % 10) / 10}, hold=0)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.ctl.close()


# --- raw sockets (tests/web/test_hostile.py): loopback only, every call bounded by a time-out ---------------------
def ws_handshake(port: int, path: str, host: str | None = None, timeout: float = 10.0):
    """A WebSocket opened by hand on 127.0.0.1 (no library between the test and the server's bytes)."""
    import base64
    import os
    import socket

    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 101"):
        s.close()
        raise ConnectionError(status.decode(errors="replace"))
    return s, head.split(b"\r\n\r\n", 1)[1]


def ws_client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (payload under 126 bytes)."""
    mask = b"\x11\x22\x33\x44"
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read_until_close(sock, rest: bytes = b"", timeout: float = 10.0) -> tuple[int | None, str, int]:
    """Read server frames until the close frame: (close code, reason, data frames before it); code None when
    the connection ended without one."""
    import socket
    import struct

    sock.settimeout(timeout)
    buf, frames = bytearray(rest), 0

    def need(n: int) -> bool:
        while len(buf) < n:
            try:
                chunk = sock.recv(1 << 16)
            except (socket.timeout, OSError):
                return False
            if not chunk:
                return False
            buf.extend(chunk)
        return True

    while need(2):
        opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
        at = 2
        if n == 126:
            if not need(4):
                break
            n, at = struct.unpack_from(">H", buf, 2)[0], 4
        elif n == 127:
            if not need(10):
                break
            n, at = struct.unpack_from(">Q", buf, 2)[0], 10
        if not need(at + n):
            break
        payload = bytes(buf[at:at + n])
        del buf[:at + n]
        if opcode == 0x8:
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            return code, payload[2:].decode(errors="replace"), frames
        frames += 1
    return None, "", frames

"""A real daemon with `--http`, and the two ways tests talk to it: JSON over HTTP, frames over WebSocket."""
from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp

from tests.daemon.util import Served, free_port
from tha4bridge.web.feed import decode


class WebServed(Served):
    def __init__(self, *args, log_dir: Path, host: str = "127.0.0.1", port: int | None = None, **kw):
        self.port = port or free_port()
        super().__init__("--http", f"{host}:{self.port}", *args, log_dir=log_dir, **kw)
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = None
        deadline = time.monotonic() + 20
        while "http:" not in self.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # the banner is printed right after hello starts answering
        m = re.search(r"http token: (\S+)", self.log.read_text())
        if m:
            self.token = m.group(1)


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

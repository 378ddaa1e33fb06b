"""The frame WebSocket: decoded by protocols/web.md it equals the shared-memory frame byte for byte, and a
client that never reads slows nobody."""
from __future__ import annotations

import asyncio
import io
import socket
import time

import aiohttp
import numpy as np
import pytest
from PIL import Image

from tha4bridge.client import FrameSubscriber
from tha4bridge.web.feed import straight

from .util import Pusher, http, ws_frames


@pytest.fixture(scope="module")
def pushed(served):
    with Pusher(served.control):  # a new pose every 50 ms: frames as fast as this machine renders them
        yield served


def _shm_frames(served, seconds: float) -> dict[int, np.ndarray]:
    """Every frame the shm ring delivers for a while, by seq."""
    out = {}
    with FrameSubscriber(served.frames, "demo") as sub:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            f = sub.recv(timeout=0.5)
            if f is not None:
                out[f.seq] = f.pixels
    return out


@pytest.mark.parametrize("fmt", ["rgba", "png", "webp"])
def test_websocket_frame_equals_the_shm_frame(pushed, fmt):
    served = pushed
    url = f"ws://127.0.0.1:{served.port}/ws/frames/demo?format={fmt}"

    async def both():
        loop = asyncio.get_running_loop()
        shm = loop.run_in_executor(None, _shm_frames, served, 2.0)
        await asyncio.sleep(0.5)  # the subscriber is connected before the frames we compare
        got = await ws_frames(url, 5)
        return got, await shm

    got, shm = asyncio.run(both())
    matched = 0
    for header, payload in got:
        assert header["stream"] == "demo" and header["encoding"] == fmt and header["payload_size"] == len(payload)
        assert header["proto"] == 1 and header["width"] == header["height"] == 512 and header["format"] == "rgba8"
        assert header["t_render_end"] <= header["t_published"]
        if fmt == "rgba":
            pixels = np.frombuffer(payload, np.uint8).reshape(header["height"], header["width"], 4)
        else:
            pixels = np.asarray(Image.open(io.BytesIO(payload)).convert("RGBA"))
        if header["seq"] in shm:
            assert np.array_equal(pixels, shm[header["seq"]]), f"seq {header['seq']} differs from the shm frame"
            matched += 1
    assert matched >= 3, f"only {matched} of 5 WebSocket frames were seen in shm"


def test_premultiplied_stream_compressed_is_straight():
    rgba = np.array([[[100, 50, 25, 128], [0, 0, 0, 0], [255, 255, 255, 255]]], np.uint8)
    assert straight(rgba).tolist() == [[[199, 100, 50, 128], [0, 0, 0, 0], [255, 255, 255, 255]]]


def _stalled_client(port: int) -> socket.socket:
    """A WebSocket client that opens the frame feed and then never reads a byte."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall((f"GET /ws/frames/demo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return s


def _count(url: str, seconds: float) -> int:
    async def run():
        n = 0
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, max_msg_size=0) as ws:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    try:
                        await asyncio.wait_for(ws.receive(), max(end - time.monotonic(), 0.01))
                        n += 1
                    except asyncio.TimeoutError:
                        break
        return n

    return asyncio.run(run())


def test_a_client_that_never_reads_does_not_slow_another(pushed):
    served = pushed
    url = f"ws://127.0.0.1:{served.port}/ws/frames/demo"
    # baseline and stalled runs alternate, so both see the same load on this shared machine
    counts = {"alone": 0, "stalled": 0}
    stalled = []
    try:
        for _ in range(2):
            counts["alone"] += _count(url, 1.5)
            stalled.append(_stalled_client(served.port))
            counts["stalled"] += _count(url, 1.5)
        fps = http(served.base, "GET", "/api/stats")[1]["streams"]["demo"]["fps"]
    finally:
        for s in stalled:
            s.close()
    assert counts["alone"] >= 6, counts
    assert counts["stalled"] >= 0.7 * counts["alone"], counts
    assert fps >= 2, f"the render loop slowed to {fps} fps with stalled viewers"

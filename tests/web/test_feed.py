"""The feed's render-thread side never waits and keeps only the newest frame; the message format round-trips;
`--http` is parsed with one clear sentence for a bad value."""
from __future__ import annotations

import asyncio
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from tha4bridge.transport.sink import FrameTimes, frame_header
from tha4bridge.web.address import is_loopback, parse_http
from tha4bridge.web.feed import Frame, FrameFeed, decode, encode


def _frame(seq: int, alpha: str = "straight"):
    header = frame_header("demo", 4, 2, alpha, "shm", FrameTimes(1.0, 2.0, 3.0), "control", np.zeros(45), seq=seq)
    pixels = np.full((2, 4, 4), seq % 256, np.uint8)
    return header, pixels


def test_nobody_watching_costs_nothing():
    feed = FrameFeed()
    feed.loop = asyncio.new_event_loop()
    feed.on_frame(*_frame(1))
    assert feed.newest("demo") is None and feed.frames == 0
    feed.loop.close()


def test_a_stalled_loop_never_blocks_the_render_thread_and_keeps_the_newest():
    feed = FrameFeed()
    loop = asyncio.new_event_loop()  # never run: a loop that is stuck for the whole test
    feed.loop = loop
    event = asyncio.Event()
    feed.watch("demo", event)
    t = time.perf_counter()
    for seq in range(1, 501):
        header, pixels = _frame(seq)
        feed.on_frame(header, pixels)
        pixels[:] = 0  # the sink may reuse its buffer: the feed kept a copy
    per_frame = (time.perf_counter() - t) / 500
    newest = feed.newest("demo")
    assert newest.header["seq"] == 500 and (newest.pixels == 500 % 256).all()
    assert per_frame < 0.002, f"{per_frame * 1e3:.3f} ms per frame on the render thread"
    assert not event.is_set()
    loop.run_until_complete(asyncio.sleep(0))  # the loop comes back: the viewer is woken
    assert event.is_set()
    feed.unwatch("demo", event)
    assert feed.newest("demo") is None and feed.watchers() == 0
    loop.close()


@pytest.mark.parametrize("encoding", ["rgba", "png", "webp"])
def test_message_round_trip(encoding):
    header, _ = _frame(7)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
    got_header, payload = decode(encode(Frame(header, pixels), encoding))
    assert got_header == dict(header, encoding=encoding, payload_size=len(payload))
    if encoding == "rgba":
        got = np.frombuffer(payload, np.uint8).reshape(2, 4, 4)
    else:
        got = np.asarray(Image.open(io.BytesIO(payload)).convert("RGBA"))
    assert np.array_equal(got, pixels)


def test_premultiplied_compressed_says_straight():
    header, _ = _frame(1, "premultiplied")
    pixels = np.array([[[50, 25, 0, 128]] * 4] * 2, np.uint8)
    got_header, payload = decode(encode(Frame(header, pixels), "png"))
    assert got_header["alpha"] == "straight"
    assert np.asarray(Image.open(io.BytesIO(payload)))[0, 0].tolist() == [100, 50, 0, 128]


def test_parse_http():
    assert parse_http("8080") == ("127.0.0.1", 8080)
    assert parse_http("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_http("[::1]:9") == ("::1", 9)
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("evil.example")
    for bad in ("http", "1:2:x", "70000", ""):
        with pytest.raises(ValueError, match=r"--http must be \[HOST:\]PORT"):
            parse_http(bad)


def test_a_pose_watcher_gets_headers_without_a_pixel_copy():
    from tha4bridge.web.feed import pose_message

    feed = FrameFeed()
    loop = asyncio.new_event_loop()
    feed.loop = loop
    feed.on_frame(*_frame(1))  # nobody watches: no frame kept, but the header (the pose shown now) is
    assert feed.newest("demo") is None and feed.last_header("demo")["seq"] == 1
    poses, viewer = asyncio.Event(), asyncio.Event()
    feed.watch("demo", poses, pixels=False)
    feed.on_frame(*_frame(2))
    assert feed.newest("demo").pixels is None and feed.watchers() == 1  # counts as a subscriber, copies nothing
    feed.watch("demo", viewer)
    feed.on_frame(*_frame(3))
    assert (feed.newest("demo").pixels == 3).all()
    feed.unwatch("demo", viewer)
    feed.on_frame(*_frame(4))
    assert feed.newest("demo").pixels is None
    feed.unwatch("demo", poses, pixels=False)
    assert feed.watchers() == 0 and feed.newest("demo") is None
    message = json.loads(pose_message(feed.last_header("demo")))
    assert message["seq"] == 4 and message["pose_source"] == "control" and len(message["pose"]) == 45
    loop.close()

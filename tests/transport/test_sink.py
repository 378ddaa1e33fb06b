"""FrameSink, the one writer of the frame header: its header matches the published test vectors field for
field, shm frames land in the ring byte for byte, inline frames carry their pixels, and closing a stream
removes its ring file."""
import json
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from tha4bridge.pose import NEUTRAL, NUM_PARAMETERS
from tha4bridge.transport.ring import RingReader
from tha4bridge.transport.sink import FrameSink, FrameTimes, SinkError, frame_header

VECTORS = Path(__file__).resolve().parents[2] / "protocols" / "vectors"


def endpoint() -> str:
    return "tcp://127.0.0.1:0"  # the sink binds port 0 and reports the port it got (sink.endpoint)


def subscribe(ctx, sink: FrameSink):
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(sink.endpoint)
    deadline = time.monotonic() + 10.0
    while True:
        sink.poll_subscriptions()
        if sink.subscribers:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            sub.close(0)
            raise AssertionError(f"no subscription reached the sink at {sink.endpoint} within 10 s")
        sink.publisher.sock.poll(int(min(left, 0.1) * 1000) + 1)  # wakes when the subscribe message arrives
    assert sink.subscribers == 1
    return sub


@pytest.mark.parametrize("transport", ["shm", "inline"])
def test_published_frames_match_the_documented_header_and_pixels(transport):
    vector = json.loads((VECTORS / f"frame_header_{transport}.json").read_text())
    ctx = zmq.Context()
    sink = FrameSink(endpoint(), transport, context=ctx)
    sink.open("cat", 32, 16, "premultiplied")
    sub = subscribe(ctx, sink)
    try:
        rng = np.random.default_rng(1)
        for expected_seq in (1, 2):
            pixels = rng.integers(0, 256, (16, 32, 4), dtype=np.uint8)
            pose = NEUTRAL.copy()
            pose[3] = 0.25
            seq, t_published = sink.publish("cat", pixels.copy(), pose, "control", FrameTimes(1.0, 2.0, 3.0))
            assert seq == expected_seq
            assert sub.poll(3000)
            parts = sub.recv_multipart()
            header = msgpack.unpackb(parts[1])
            assert parts[0] == b"cat" and list(header) == list(vector)  # same keys, same order as the vector
            for key, value in vector.items():
                assert type(header[key]) is type(value), key
            assert (header["seq"], header["width"], header["height"], header["alpha"]) == (seq, 32, 16, "premultiplied")
            assert header["t_published"] == t_published and header["pose"][3] == 0.25
            assert len(header["pose"]) == NUM_PARAMETERS
            if transport == "shm":
                assert header["path"] == sink.describe("cat")["path"] and len(parts) == 2
                reader = RingReader(header["path"])
                assert np.array_equal(reader.read(seq, header["slot"]), pixels)
                reader.close()
            else:
                assert np.array_equal(np.frombuffer(parts[2], np.uint8).reshape(16, 32, 4), pixels)
        path = sink.describe("cat")["path"]
        sink.close_stream("cat")
        assert path == "" or not Path(path).exists()
    finally:
        sub.close(0)
        sink.close()
        ctx.term()


def test_a_crop_streams_header_and_ring_say_where_it_lies():
    vector = json.loads((VECTORS / "frame_header_shm_crop.json").read_text())
    ctx = zmq.Context()
    sink = FrameSink(endpoint(), "shm", context=ctx)
    sink.open("head", 24, 8, "straight", placement=(100, 40, 512, 512))
    sub = subscribe(ctx, sink)
    try:
        pixels = np.arange(8 * 24 * 4, dtype=np.uint8).reshape(8, 24, 4)
        sink.publish("head", pixels.copy(), NEUTRAL, "idle", FrameTimes(1.0, 2.0, 3.0))
        assert sub.poll(3000)
        header = msgpack.unpackb(sub.recv_multipart()[1])
        assert list(header) == list(vector)  # same keys, same order as the vector
        assert (header["region"], header["full_width"], header["full_height"]) == ([100, 40, 24, 8], 512, 512)
        reader = RingReader(header["path"])
        assert (reader.header["region_x"], reader.header["region_y"], reader.header["version_minor"]) == (100, 40, 1)
        assert np.array_equal(reader.read(header["seq"], header["slot"]), pixels)
        reader.close()
    finally:
        sub.close(0)
        sink.close()
        ctx.term()


def test_frame_header_is_the_header_of_the_protocol():
    h = frame_header("s", 512, 512, "straight", "inline", FrameTimes(1.0, 2.0, 3.0), "idle", NEUTRAL, seq=5)
    assert (h["stride"], h["size"], h["proto"], h["format"], h["color_space"]) == (2048, 512 * 512 * 4, 1, "rgba8", "srgb")
    assert h["pose"] == [0.0] * NUM_PARAMETERS and all(type(v) is float for v in h["pose"])


def test_bad_options_are_refused_in_one_sentence():
    with pytest.raises(SinkError, match="--transport must be shm or inline"):
        FrameSink(endpoint(), "pigeon")
    sink = FrameSink(endpoint(), "inline")
    try:
        with pytest.raises(SinkError, match="--alpha must be straight or premultiplied"):
            sink.open("x", 4, 4, "wrong")
    finally:
        sink.close()

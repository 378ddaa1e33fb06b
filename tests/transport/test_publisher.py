"""FramePublisher on real sockets: subscriber counting through XPUB, the last-value cache for late joiners,
`forget`, and sends that never block on a subscriber that stopped reading."""
import time

import msgpack
import zmq

from tha4bridge.transport.publisher import SNDHWM, FramePublisher


def endpoint() -> str:
    return "tcp://127.0.0.1:0"  # the publisher binds port 0 and reports the port it got (pub.endpoint)


def until(pub: FramePublisher, predicate, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "the subscription change never arrived"
        pub.poll_subscriptions()
        time.sleep(0.005)


def test_counts_subscribers_and_resends_the_latest_header_to_a_late_joiner():
    ctx = zmq.Context()
    pub = FramePublisher(endpoint(), ctx)
    try:
        pub.publish("a", {"seq": 1})
        pub.publish("a", {"seq": 2})
        pub.publish("b", {"seq": 7})
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"a")
        sub.connect(pub.endpoint)
        until(pub, lambda: pub.subscribers == 1)
        assert sub.poll(3000)
        topic, header = sub.recv_multipart()
        assert topic == b"a" and msgpack.unpackb(header) == {"seq": 2}  # the newest only, b filtered by ZeroMQ
        assert not sub.poll(200)
        assert pub.resent == 1 and pub.messages == 3
        pub.forget("a")  # an unloaded stream is not re-sent to the next joiner
        late = ctx.socket(zmq.SUB)
        late.setsockopt(zmq.SUBSCRIBE, b"")
        late.connect(pub.endpoint)
        until(pub, lambda: pub.subscribers == 2)
        assert late.poll(3000) and late.recv_multipart()[0] == b"b" and not late.poll(200)
        sub.close(0)
        late.close(0)
        until(pub, lambda: pub.subscribers == 0)
    finally:
        pub.close()
        ctx.term()


def test_a_subscriber_that_never_reads_never_blocks_a_publish():
    ctx = zmq.Context()
    pub = FramePublisher(endpoint(), ctx)
    stuck = ctx.socket(zmq.SUB)
    stuck.setsockopt(zmq.RCVHWM, 1)
    stuck.setsockopt(zmq.SUBSCRIBE, b"")
    stuck.connect(pub.endpoint)
    try:
        until(pub, lambda: pub.subscribers == 1)
        pixels = bytes(512 * 512 * 4)
        t0 = time.perf_counter()
        for seq in range(200):  # 200 MiB offered to a reader that takes nothing
            pub.publish("s", {"seq": seq}, pixels)
        assert time.perf_counter() - t0 < 5.0
        assert pub.messages == 200 and pub.send_errors == 0  # dropped by ZeroMQ past SNDHWM, never raised
        got = 0
        while stuck.poll(200):
            stuck.recv_multipart()
            got += 1
        assert got < 200 and SNDHWM == 4
    finally:
        stuck.close(0)
        pub.close()
        ctx.term()

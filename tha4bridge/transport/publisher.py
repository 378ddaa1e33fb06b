"""Frame notifications over a ZeroMQ XPUB socket (protocols/frames.md §1).

XPUB rather than PUB: we see subscriptions arrive, so a late joiner is answered at once with the latest
header of each matching stream (a last-value cache), and we can count subscribers. Sends never block:
a subscriber whose queue is full (SNDHWM) loses messages; the render loop and other subscribers don't wait.
Used from one thread only (the render thread), as ZeroMQ sockets are not thread-safe.
"""
from __future__ import annotations

import msgpack
import zmq

from .sockets import bind

PROTO_MAJOR = 1
PROTO_MINOR = 2  # 1.1: frame headers carry the `pose` they show; 1.2: see "Since 1.2" in frames.md and control.md
SNDHWM = 4


class FramePublisher:
    def __init__(self, endpoint: str, context: zmq.Context | None = None, sndhwm: int = SNDHWM):
        self.ctx = context or zmq.Context.instance()
        self.sock, self.endpoint = bind(self.ctx, zmq.XPUB, endpoint, {
            zmq.SNDHWM: sndhwm,
            zmq.XPUB_VERBOSER: 1,  # every (un)subscribe reaches us: count them
        })
        self.subscriptions: dict[bytes, int] = {}
        self._latest: dict[str, list] = {}  # stream → its last message parts (the last-value cache)
        self.messages = 0
        self.send_errors = 0
        self.resent = 0

    @property
    def subscribers(self) -> int:
        return sum(self.subscriptions.values())

    def poll_subscriptions(self) -> bool:
        """Handle pending (un)subscribe messages; returns True when the subscriber count changed."""
        changed = False
        while True:
            try:
                msg = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return changed
            if not msg or msg[0] not in (0, 1):
                continue
            topic = msg[1:]
            if msg[0] == 1:
                self.subscriptions[topic] = self.subscriptions.get(topic, 0) + 1
                for stream, parts in self._latest.items():  # late joiner: the newest frame right away
                    if stream.encode("utf-8").startswith(topic):
                        self._send(parts)
                        self.resent += 1
            else:
                n = self.subscriptions.get(topic, 0) - 1
                if n > 0:
                    self.subscriptions[topic] = n
                else:
                    self.subscriptions.pop(topic, None)
            changed = True

    def publish(self, stream: str, header: dict, pixels=None) -> None:
        """Send `[stream, msgpack(header)]` or, with `pixels` (a buffer), `[stream, header, pixels]`.

        `pixels` is sent without copying: the caller must not modify that buffer afterwards.
        """
        parts = [stream.encode("utf-8"), msgpack.packb(header, use_bin_type=True)]
        if pixels is not None:
            parts.append(pixels)
        self._latest[stream] = parts
        self._send(parts)
        self.messages += 1

    def forget(self, stream: str) -> None:
        self._latest.pop(stream, None)

    def _send(self, parts) -> None:
        try:
            self.sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:  # only with XPUB_NODROP; kept so a full queue can never raise into the render loop
            self.send_errors += 1
        except zmq.ZMQError:
            self.send_errors += 1

    def close(self) -> None:
        self.sock.close(linger=0)

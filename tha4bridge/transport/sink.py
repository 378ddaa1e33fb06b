"""The frame sink: where rendered frames leave the daemon (protocols/frames.md).

It owns everything a frame passes through on its way out: one shared-memory ring per stream (`shm`
transport), the ZeroMQ publisher, and the frame header, which `frame_header` alone writes. The daemon, the
benchmarks and the tests publish through it, so the wire format has one implementation.
Used from one thread (the render thread), except `open`, which a loader thread may call: rings are files,
and the dict of outputs is guarded.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import zmq

from .publisher import PROTO_MAJOR, PROTO_MINOR, FramePublisher
from .ring import DEFAULT_SLOTS, FrameRing, check_alpha

TRANSPORTS = ("shm", "inline")


class SinkError(ValueError):
    """A sink option that cannot work (unknown transport or alpha mode)."""


def check_transport(transport: str) -> None:
    if transport not in TRANSPORTS:
        raise SinkError(f"--transport must be {' or '.join(TRANSPORTS)}, got {transport!r}")


@dataclass(frozen=True)
class FrameTimes:
    """Wall-clock seconds (time.time()) of one frame's life, as its header carries them."""

    t_pose: float  # the pose it shows arrived
    t_render_start: float
    t_render_end: float


def frame_header(stream: str, width: int, height: int, alpha: str, transport: str, times: FrameTimes,
                 pose_source: str, pose, seq: int = 0, generation: int = 0,
                 placement: tuple[int, int, int, int] | None = None, body: dict | None = None) -> dict:
    """The msgpack map of protocols/frames.md §1.1, less what is known only when the frame goes out
    (`seq`, and for shm `generation`, `path`, `slot`, `offset`; `t_published` last of all). `placement`: a
    crop's (x, y, full_width, full_height), which adds `region` and the full frame's size (since 1.2). `body`:
    how a two-rate frame's body was made (`made`, `pose`; only on those frames, protocols/frames.md)."""
    header = {"proto": PROTO_MAJOR, "proto_minor": PROTO_MINOR, "stream": stream, "seq": seq,
            "generation": generation, "width": width, "height": height, "stride": width * 4, "format": "rgba8",
            "alpha": alpha, "color_space": "srgb", "transport": transport, "size": width * height * 4,
            "t_pose": times.t_pose, "t_render_start": times.t_render_start, "t_render_end": times.t_render_end,
            "t_published": 0.0, "pose_source": pose_source, "pose": [float(v) for v in pose]}
    if placement is not None:
        x, y, full_w, full_h = placement
        header.update(region=[x, y, width, height], full_width=full_w, full_height=full_h)
    if body is not None:
        header["body"] = body
    return header


class _Output:
    __slots__ = ("name", "alpha", "ring", "seq", "placement")

    def __init__(self, name: str, alpha: str, ring: FrameRing | None, placement):
        self.name, self.alpha, self.ring, self.seq, self.placement = name, alpha, ring, 0, placement


class FrameSink:
    def __init__(self, endpoint: str, transport: str = "shm", slots: int = DEFAULT_SLOTS,
                 context: zmq.Context | None = None):
        check_transport(transport)
        self.transport, self.slots = transport, slots
        self.publisher = FramePublisher(endpoint, context)
        self._outputs: dict[str, _Output] = {}
        self._lock = threading.Lock()
        # Other ways out (the web feed, tha4bridge/web/feed.py): `on_frame(header, pixels)` is called on the
        # render thread after each publish and must return at once (copy or queue, never wait); `watchers()`
        # counts their viewers, who keep the render loop at full rate like ZeroMQ subscribers do;
        # `on_close(name)`, optional, is called once a stream's outputs are closed (unloaded), on the thread
        # that closed them, and must return at once too (the web feed then closes that stream's WebSockets).
        self.listeners: list = []

    @property
    def endpoint(self) -> str:
        return self.publisher.endpoint

    @property
    def subscribers(self) -> int:
        return self.publisher.subscribers + sum(listener.watchers() for listener in self.listeners)

    def poll_subscriptions(self) -> bool:
        """Handle (un)subscriptions; True when the subscriber count changed."""
        return self.publisher.poll_subscriptions()

    def open(self, name: str, width: int, height: int, alpha: str,
             placement: tuple[int, int, int, int] | None = None) -> None:
        """Make room for stream `name`'s frames (its ring file, with the shm transport). `placement`: for a
        crop, its (x, y) in the whole frame and the whole frame's (width, height)."""
        try:
            check_alpha(alpha)
        except ValueError as e:
            raise SinkError(str(e)) from None
        ring = (FrameRing(name, width, height, alpha=alpha, slot_count=self.slots, placement=placement)
                if self.transport == "shm" else None)
        with self._lock:
            self._outputs[name] = _Output(name, alpha, ring, placement)

    def describe(self, name: str) -> dict:
        """Where a reader finds stream `name`'s pixels (the `streams` reply fields)."""
        ring = self._outputs[name].ring
        return {"transport": self.transport, "path": str(ring.path) if ring else "",
                "generation": ring.generation if ring else 0, "slots": ring.layout.slot_count if ring else 0}

    def publish(self, name: str, pixels: np.ndarray, pose, pose_source: str, times: FrameTimes,
                body: dict | None = None) -> tuple[int, float]:
        """Send one uint8 [H, W, 4] frame of stream `name`; returns (seq, t_published). `body`: how a two-rate
        frame's body was made (frame_header).

        Inline, `pixels` goes to ZeroMQ without a copy: pass a fresh array, and never touch it afterwards.
        """
        out = self._outputs[name]
        h, w = pixels.shape[:2]
        header = frame_header(name, w, h, out.alpha, self.transport, times, pose_source, pose,
                              placement=out.placement, body=body)
        if out.ring is not None:
            seq, slot, view = out.ring.begin()
            np.copyto(view, pixels, casting="no")
            out.ring.commit(seq, slot, t_pose=times.t_pose, t_render_start=times.t_render_start,
                            t_render_end=times.t_render_end)
            header.update(seq=seq, generation=out.ring.generation, path=str(out.ring.path), slot=slot,
                          offset=out.ring.offset(slot))
            payload = None
        else:
            seq = out.seq + 1
            header["seq"] = seq
            payload = pixels
        header["t_published"] = t_published = time.time()
        self.publisher.publish(name, header, payload)
        out.seq = seq
        for listener in self.listeners:
            listener.on_frame(header, pixels)
        return seq, t_published

    def close_stream(self, name: str) -> None:
        """Remove stream `name`'s ring file and forget its cached header."""
        with self._lock:
            out = self._outputs.pop(name, None)
        if out is not None and out.ring is not None:
            out.ring.close()
        self.publisher.forget(name)
        for listener in self.listeners:
            if hasattr(listener, "on_close"):
                listener.on_close(name)

    def stats(self) -> dict:
        p = self.publisher
        return {"subscribers": p.subscribers, "messages": p.messages, "send_errors": p.send_errors,
                "resent": p.resent}

    def close(self) -> None:
        """Close the publisher and remove every ring file."""
        self.publisher.close()
        with self._lock:
            outputs, self._outputs = list(self._outputs.values()), {}
        for out in outputs:
            if out.ring is not None:
                out.ring.close()

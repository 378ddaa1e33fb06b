"""Python client for a running `tha4bridge serve`: `Control` (commands) and `FrameSubscriber` (frames).

    from tha4bridge.client import Control, FrameSubscriber
    with Control() as ctl, FrameSubscriber() as frames:
        ctl.set_pose("demo", {"eye_wink_left": 1.0})
        frame = frames.recv(timeout=2.0, latest=True)   # frame.pixels: uint8 [H, W, 4]

Protocols: protocols/control.md and protocols/frames.md.
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import numpy as np
import zmq

from .defaults import CONTROL_ENDPOINT as DEFAULT_CONTROL
from .defaults import FRAMES_ENDPOINT as DEFAULT_FRAMES
from .transport.control import HARD_MAX_REQUEST, MAX_REQUEST
from .transport.publisher import PROTO_MAJOR
from .transport.ring import RingError, RingReader, TornFrame


class ControlError(RuntimeError):
    """The daemon answered `ok: false` (`code` says why) or did not answer in time (`code` = "timeout")."""

    def __init__(self, message: str, code: str = "error", reply: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reply = reply or {}


class ProtocolMismatch(ControlError):
    pass


class _Client:
    """One ZeroMQ socket (LINGER 0) on the given context or the process's shared one; a context manager.

    Not a context of its own: a client dropped without close() inside a reference cycle would leave the garbage
    collector finalizing that context before its socket, and a context's finalizer waits for its sockets to
    close — forever (seen: a test whose fixture raised hung the whole pytest process at the next collection). A
    socket alone finalizes safely (LINGER 0: it closes at once)."""

    def __init__(self, kind: int, context: zmq.Context | None):
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)

    def close(self) -> None:
        self.sock.close(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Control(_Client):
    """Send commands to the daemon's control socket (a DEALER; replies are matched by `id`)."""

    def __init__(self, endpoint: str = DEFAULT_CONTROL, timeout: float = 5.0, context: zmq.Context | None = None):
        super().__init__(zmq.DEALER, context)
        self.endpoint, self.timeout = endpoint, timeout
        self.sock.connect(endpoint)
        self._ids = itertools.count(1)

    def request(self, cmd: str, timeout: float | None = None, body: dict | None = None, **fields) -> dict:
        """Send one command, return the reply map as is (ok true or false). Raises ControlError on timeout.
        `body`: more fields, for names taken by this signature (the `timeout` field of `inject`)."""
        rid = next(self._ids)
        body = {"cmd": cmd, "id": rid, "proto": PROTO_MAJOR, **(body or {}), **fields}
        data = msgpack.packb(body, use_bin_type=True)
        if len(data) > MAX_REQUEST:  # the daemon would refuse it (or, far above, never see it): say so now
            raise ControlError(f"the {cmd} request is {len(data)} bytes, over the control socket's limit of "
                               f"{MAX_REQUEST} bytes (1 MiB); not sent", "too_large")
        self.sock.send_multipart([b"", data])
        return self._wait(rid, self.timeout if timeout is None else timeout, cmd)

    def send_raw(self, frames: list[bytes], timeout: float | None = None) -> dict:
        """Send arbitrary frames after the delimiter and return the next reply (for testing bad input)."""
        self.sock.send_multipart([b""] + list(frames))
        size = sum(len(f) for f in frames)
        what = (f"raw request of {size} bytes (over {HARD_MAX_REQUEST} bytes ZeroMQ drops it unanswered and "
                f"closes the connection)" if size > HARD_MAX_REQUEST else "raw request")
        return self._wait(None, self.timeout if timeout is None else timeout, what)

    def _wait(self, rid, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                raise ControlError(f"no reply to {what} from {self.endpoint} within {timeout:g} s "
                                   "(is `tha4bridge serve` running?)", "timeout")
            frames = self.sock.recv_multipart()
            reply = msgpack.unpackb(frames[-1], raw=False)
            if rid is None or (isinstance(reply, dict) and reply.get("id") == rid):
                return reply
            # a late reply to an earlier request that timed out: ignore it

    def call(self, cmd: str, timeout: float | None = None, **fields) -> dict:
        """Like `request`, but raises ControlError (ProtocolMismatch for a version refusal) when ok is false."""
        reply = self.request(cmd, timeout=timeout, **fields)
        if not reply.get("ok"):
            cls = ProtocolMismatch if reply.get("code") == "version" else ControlError
            raise cls(reply.get("error", "request refused"), reply.get("code", "error"), reply)
        return reply

    # Convenience wrappers for the common commands.
    def hello(self, client: str = "tha4bridge.client", **kw) -> dict:
        return self.call("hello", client=client, **kw)

    def streams(self) -> list[dict]:
        return self.call("streams")["streams"]

    def get_pose(self, stream: str | None = None) -> dict:
        return self.call("get_pose", **({"stream": stream} if stream else {}))

    def set_pose(self, stream: str | None, pose: dict, hold: float | None = None, replace: bool = False) -> dict:
        fields = {"pose": {k: float(v) for k, v in pose.items()}, "replace": replace}
        if stream is not None:
            fields["stream"] = stream
        if hold is not None:
            fields["hold"] = float(hold)
        return self.call("set_pose", **fields)

    def stats(self) -> dict:
        return self.call("stats")

    # Layers over the pose (protocols/control.md, since 1.2): expressions, injected parameters, talking.
    def expressions(self) -> dict[str, dict[str, float]]:
        return self.call("expressions")["expressions"]

    def set_expression(self, name: str, intensity: float = 1.0, fade: float = 0.3, hold: float | None = None,
                       stream: str | None = None) -> dict:
        return self.call("set_expression", **_fields(stream=stream, name=name, intensity=float(intensity),
                                                     fade=float(fade), hold=hold))

    def inject(self, source: str, params: dict, weight: float = 1.0, mode: str = "set",
               timeout: float = 1.0, stream: str | None = None) -> dict:
        """`timeout`: seconds the values last unless re-sent (0 = until `release`)."""
        return self.call("inject", body={"timeout": float(timeout)}, **_fields(
            stream=stream, source=source, params={k: float(v) for k, v in params.items()},
            weight=float(weight), mode=mode))

    def release(self, stream: str | None = None, source: str | None = None) -> dict:
        return self.call("release", **_fields(stream=stream, source=source))

    def talk(self, on: bool, stream: str | None = None, over_tracker: bool | None = None) -> dict:
        """`over_tracker`: talk even while a live tracker drives the face (by default its mouth wins)."""
        return self.call("talk", **_fields(stream=stream, on=bool(on), over_tracker=over_tracker))

    def mouth(self, level: float, stream: str | None = None, over_tracker: bool | None = None) -> dict:
        return self.call("mouth", **_fields(stream=stream, level=float(level), over_tracker=over_tracker))

    def visemes(self, items, start: float | str = "now", stream: str | None = None,
                over_tracker: bool | None = None) -> dict:
        """`items`: [(t seconds after start, viseme A/I/U/E/O/closed, weight 0-1)]; `start`: "now" or a
        time.time() moment on the daemon's clock."""
        return self.call("visemes", **_fields(stream=stream, start=start, over_tracker=over_tracker,
                                              items=[[float(t), v, float(w)] for t, v, w in items]))

    def speak(self, path: str, start: float | str = "now", stream: str | None = None) -> dict:
        """The mouth follows the WAV file at `path` (read by the daemon, on its machine)."""
        return self.call("speak", **_fields(stream=stream, path=str(path), start=start))

    def load(self, path: str, name: str | None = None, timeout: float = 120.0, **kw) -> dict:
        return self.call("load", timeout=timeout, path=str(path), **({"name": name} if name else {}), **kw)

    def unload(self, stream: str, timeout: float = 60.0) -> dict:
        """Answered once the stream's frame in flight is done and its ring file deleted."""
        return self.call("unload", timeout=timeout, stream=stream)

    def shutdown(self) -> dict:
        return self.call("shutdown")


def _fields(**kw) -> dict:
    """The fields given (None = leave the field out: the daemon's default applies)."""
    return {k: v for k, v in kw.items() if v is not None}


@dataclass
class Frame:
    stream: str
    header: dict
    pixels: np.ndarray  # uint8 [H, W, 4], a copy owned by the caller

    @property
    def seq(self) -> int:
        return self.header["seq"]

    @property
    def region(self) -> tuple[int, int, int, int] | None:
        """A crop stream's (x, y, w, h) in the whole frame (since 1.2); None for a whole frame."""
        r = self.header.get("region")
        return tuple(r) if r else None


@dataclass
class SubscriberStats:
    received: int = 0  # frames returned
    torn: int = 0  # shm slot overwritten before or during the copy (discarded)
    dropped: int = 0  # gaps in seq: frames the daemon published whose notification never reached us
    duplicates: int = 0  # a re-sent latest frame we already had (late-joiner cache)
    invalid: int = 0  # messages that were not a valid frame (wrong size, unknown format, ring gone)
    last_seq: dict = field(default_factory=dict)


RING_SWEEP_INTERVAL = 1.0  # s between checks for rings that are gone (one stat() per mapped ring)


class FrameSubscriber(_Client):
    """Receive frames of one, several or all streams; shm or inline, decided per message by its header."""

    def __init__(self, endpoint: str = DEFAULT_FRAMES, streams: list[str] | str | None = None,
                 rcvhwm: int = 4, context: zmq.Context | None = None):
        super().__init__(zmq.SUB, context)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        if isinstance(streams, str):
            streams = [streams]
        self.streams = set(streams) if streams else None
        for topic in (streams or [""]):
            self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))
        self.sock.connect(endpoint)
        self.stats = SubscriberStats()
        self._rings: dict[str, RingReader] = {}
        self._swept = time.monotonic()

    def recv(self, timeout: float | None = None, latest: bool = False) -> Frame | None:
        """The next valid frame (None after `timeout` seconds). `latest`: skip queued ones, return the newest."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if time.monotonic() - self._swept > RING_SWEEP_INTERVAL:
                self._drop_gone_rings()
            if deadline is None:
                parts = self.sock.recv_multipart()
            else:
                left = deadline - time.monotonic()
                if left <= 0 or not self.sock.poll(max(int(left * 1000), 0) + 1, zmq.POLLIN):
                    self._drop_gone_rings()  # nothing arrives: perhaps the daemon is gone, and its rings
                    return None
                parts = self.sock.recv_multipart()
            if latest:
                parts = self._drain(parts)
            frame = self._decode(parts)
            if frame is not None:
                return frame

    def _drain(self, parts):
        while True:
            try:
                newer = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return parts
            self._note_skipped(parts)
            parts = newer

    def _note_skipped(self, parts) -> None:
        try:
            header = msgpack.unpackb(parts[1], raw=False)
            self.stats.last_seq.setdefault(header["stream"], header["seq"] - 1)
            self.stats.last_seq[header["stream"]] = max(self.stats.last_seq[header["stream"]], header["seq"])
        except Exception:
            pass

    def __iter__(self):
        while True:
            yield self.recv()

    def _decode(self, parts: list[bytes]) -> Frame | None:
        if len(parts) < 2:
            self.stats.invalid += 1
            return None
        stream = parts[0].decode("utf-8", "replace")
        if self.streams is not None and stream not in self.streams:
            return None  # a prefix match of our subscription
        try:
            header = msgpack.unpackb(parts[1], raw=False)
        except Exception:
            self.stats.invalid += 1
            return None
        if header.get("proto") != PROTO_MAJOR:
            raise ProtocolMismatch(f"the daemon sends frames protocol {header.get('proto')}.x, "
                                   f"this client speaks {PROTO_MAJOR}.x", "version", header)
        seq = header["seq"]
        last = self.stats.last_seq.get(stream)
        if last is not None and seq <= last:
            if seq == last:
                self.stats.duplicates += 1
                return None
            last = None  # seq went back: a new generation (stream reloaded or daemon restarted)
        w, h = header["width"], header["height"]
        if header.get("format") != "rgba8" or header.get("size") != w * h * 4:
            self.stats.invalid += 1
            return None
        if header.get("transport") == "inline":
            if len(parts) < 3 or len(parts[2]) != header["size"]:
                self.stats.invalid += 1
                return None
            pixels = np.frombuffer(parts[2], dtype=np.uint8).reshape(h, w, 4).copy()
        else:
            try:
                ring = self._ring(header)
                pixels = ring.read(seq, header["slot"])
            except TornFrame:
                self.stats.torn += 1
                self._count_gap(stream, last, seq)
                self.stats.last_seq[stream] = seq
                return None
            except RingError:
                self.stats.invalid += 1
                return None
        self._count_gap(stream, last, seq)
        self.stats.last_seq[stream] = seq
        self.stats.received += 1
        return Frame(stream, header, pixels)

    def _count_gap(self, stream: str, last: int | None, seq: int) -> None:
        if last is not None and seq > last + 1:
            self.stats.dropped += seq - last - 1

    def _ring(self, header: dict) -> RingReader:
        path = header["path"]
        ring = self._rings.get(path)
        if ring is not None and ring.generation != header["generation"]:
            ring.close()
            ring = None
        if ring is None:
            self._drop_gone_rings()  # a new ring often means an old one ended (restart, reload): unmap it
            ring = RingReader(path)
            if ring.generation != header["generation"]:
                ring.close()
                raise RingError(f"{path}: ring generation {ring.generation} does not match the header's "
                                f"{header['generation']}")
            self._rings[path] = ring
        return ring

    def _drop_gone_rings(self) -> None:
        """Unmap rings whose writer closed them or whose file was deleted (a daemon that exited or was
        killed): a kept mapping holds the deleted file's memory (MBs of tmpfs) until this client exits."""
        self._swept = time.monotonic()
        for path, ring in list(self._rings.items()):
            try:
                gone = ring.closed_by_writer or os.stat(path).st_ino != ring.inode
            except OSError:
                gone = True
            if gone:
                ring.close()
                del self._rings[path]

    def close(self) -> None:
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()
        super().close()


def save_frame_png(frame: Frame, path: str | Path) -> None:
    from PIL import Image  # not imaging.save_png: that module imports torch, seconds of start-up for a CLI tool

    Image.fromarray(frame.pixels, "RGBA").save(path)

"""The newest-frame fan-out between the render thread and the web server's event loop.

`FrameFeed.on_frame` is a FrameSink listener: it runs on the render thread after every publish and must
never wait, so it only keeps the newest frame of each stream (a copy, taken only while a viewer watches it)
and pokes the event loop. Each WebSocket connection then takes whatever is newest when it is ready to
send: a viewer that reads slowly, or never, skips frames and slows nobody else.
Compressed encodings are made once per frame and format, however many viewers share them.
A pose watcher (the browser-runtime page's `/ws/poses/`) needs only the header, which carries the pose the
frame was rendered from: while nobody watches a stream's pixels, its frames are kept without them (no copy).
`on_close` (the sink's other listener call) hears of an unloaded stream, so its WebSockets can be closed.
"""
from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

ENCODINGS = ("rgba", "png", "webp")
_PREFIX = struct.Struct("<I")  # the JSON header's byte length (protocols/web.md)


@dataclass
class Frame:
    header: dict
    pixels: np.ndarray | None  # uint8 [H, W, 4], as published (straight or premultiplied, per header["alpha"]);
    # None when only pose watchers wanted this frame
    encoded: dict = field(default_factory=dict)  # encoding name -> payload bytes
    messages: dict = field(default_factory=dict)  # encoding name -> the whole WebSocket message (encode)


def straight(pixels: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA8 back to straight alpha (what PNG and WebP store)."""
    a = pixels[..., 3:4].astype(np.float32)
    rgb = np.where(a > 0, pixels[..., :3] * (255.0 / np.maximum(a, 1.0)), 0.0)
    return np.concatenate([np.clip(np.rint(rgb), 0, 255).astype(np.uint8), pixels[..., 3:4]], axis=-1)


def encode(frame: Frame, encoding: str) -> bytes:
    """One WebSocket message: length prefix, JSON header, payload (protocols/web.md). Made once per frame and
    encoding: every viewer of the frame sends the same bytes object (200 viewers hold one copy, not 200)."""
    message = frame.messages.get(encoding)
    if message is not None:
        return message
    payload = frame.encoded.get(encoding)
    if payload is None:
        if encoding == "rgba":
            payload = frame.pixels.tobytes()
        else:
            px = straight(frame.pixels) if frame.header["alpha"] == "premultiplied" else frame.pixels
            buf = io.BytesIO()
            # Speed over size: a live feed. WebP lossless + exact keeps every value, even under alpha 0.
            opts = {"compress_level": 1} if encoding == "png" else {"lossless": True, "quality": 0, "method": 0, "exact": True}
            Image.fromarray(px, "RGBA").save(buf, format=encoding.upper(), **opts)
            payload = buf.getvalue()
        frame.encoded[encoding] = payload
    head = dict(frame.header, encoding=encoding, payload_size=len(payload))
    if encoding != "rgba":
        head["alpha"] = "straight"  # PNG and WebP carry straight alpha whatever the stream sends
    text = json.dumps(head, separators=(",", ":")).encode()
    message = frame.messages[encoding] = _PREFIX.pack(len(text)) + text + payload
    if encoding == "rgba":
        frame.encoded.pop(encoding, None)  # the message holds the pixels: one copy is enough
    return message


def decode(message: bytes) -> tuple[dict, bytes]:
    """The inverse of `encode` (tests, Python viewers): (header, payload)."""
    (n,) = _PREFIX.unpack_from(message)
    header = json.loads(message[_PREFIX.size:_PREFIX.size + n])
    return header, message[_PREFIX.size + n:]


class FrameFeed:
    def __init__(self):
        self._lock = threading.Lock()  # a leaf: guards the dicts below, held for a few assignments
        self._newest: dict[str, Frame] = {}
        self._watchers: dict[str, int] = {}  # every watcher, pose-only ones included (they keep the full rate)
        self._pixel_watchers: dict[str, int] = {}
        self._last_header: dict[str, dict] = {}  # every stream's last header, watched or not: a new pose
        # watcher gets the current pose at once (an unchanged pose may not render again for a long time)
        self._events: set[asyncio.Event] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.frames = 0  # frames handed over to the loop (stats)
        self._poked = False
        self.ended: Callable[[str], None] | None = None  # the server's: called on the loop when a stream ends

    # --- the render thread ---------------------------------------------------------------------------
    def on_frame(self, header: dict, pixels: np.ndarray) -> None:
        name = header["stream"]
        with self._lock:
            self._last_header[name] = dict(header)
            if not self._watchers.get(name) or self.loop is None:
                return  # nobody watches: no copy, no wake-up
            copy = bool(self._pixel_watchers.get(name))
        # The copy is the render thread's whole cost (about 0.1 ms for 512x512): the sink may reuse
        # `pixels`, and an inline frame belongs to ZeroMQ once published.
        frame = Frame(dict(header), np.array(pixels, copy=True) if copy else None)
        with self._lock:
            self._newest[name] = frame
            self.frames += 1
            poke, self._poked = not self._poked, True
        if poke:  # one wake-up in flight at a time: a busy loop never piles up callbacks
            try:
                self.loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop closed while we rendered
                pass

    def on_close(self, name: str) -> None:
        """Stream `name` was unloaded (its outputs are closed): forget its frames, and tell the server on its
        loop (`ended`), which closes the stream's WebSockets. Never waits."""
        with self._lock:
            self._newest.pop(name, None)
            self._last_header.pop(name, None)
        if self.loop is not None and self.ended is not None:
            try:
                self.loop.call_soon_threadsafe(self.ended, name)
            except RuntimeError:  # the loop closed meanwhile
                pass

    # --- the event loop ------------------------------------------------------------------------------
    def _wake(self) -> None:
        with self._lock:
            self._poked = False
        for event in self._events:
            event.set()

    def watch(self, name: str, event: asyncio.Event, pixels: bool = True) -> None:
        """`pixels=False`: a watcher of headers only (poses); it wakes on every frame like the others."""
        with self._lock:
            self._watchers[name] = self._watchers.get(name, 0) + 1
            if pixels:
                self._pixel_watchers[name] = self._pixel_watchers.get(name, 0) + 1
            self._events.add(event)

    def unwatch(self, name: str, event: asyncio.Event, pixels: bool = True) -> None:
        with self._lock:
            self._watchers[name] -= 1
            if pixels:
                self._pixel_watchers[name] -= 1
                if not self._pixel_watchers[name]:
                    del self._pixel_watchers[name]
            if not self._watchers[name]:
                del self._watchers[name]
                self._newest.pop(name, None)
            self._events.discard(event)

    def last_header(self, name: str) -> dict | None:
        with self._lock:
            return self._last_header.get(name)

    def newest(self, name: str) -> Frame | None:
        with self._lock:
            return self._newest.get(name)

    def watchers(self) -> int:
        with self._lock:
            return sum(self._watchers.values())


POSE_FIELDS = ("stream", "seq", "t_pose", "t_render_end", "t_published", "pose_source", "pose")


def pose_message(header: dict) -> str:
    """One `/ws/poses/` message (protocols/web.md): the pose a frame was rendered from, as a JSON text."""
    return json.dumps({k: header.get(k) for k in POSE_FIELDS}, separators=(",", ":"))

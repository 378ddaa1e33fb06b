"""The running streams and the model cache: which characters the daemon shows, and their per-stream state.

A stream is one character: a poser (shared when the same student is loaded twice), a control hold (a pose a
game set over the control socket), the scheduler's bookkeeping and its statistics. Every field here is
guarded by `StreamRegistry.lock` (see the daemon's docstring for the lock policy).
"""
from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..defaults import DEMO
from ..layers import Layers
from .bodytrack import BodyTrack
from ..pose import PoseFixes
from ..region import Region, RegionError
from ..transport.control import RequestError
from ..transport.ring import STREAM_NAME, STREAM_NAME_RULE, safe_stream_name
from ..transport.sink import FrameSink

STATS_WINDOW = 256


def default_stream_name(spec: str) -> str:
    """A stream's name when none is given: the demo's word, or the student folder's name made safe."""
    return DEMO if spec == DEMO else safe_stream_name(Path(spec).resolve().name)


def check_stream_name(name: str) -> None:
    if not STREAM_NAME.match(name):
        raise RequestError("bad_request", f"stream name {name!r} {STREAM_NAME_RULE}")


@dataclass
class ControlHold:
    """A pose set over the control socket, which parameters it named, and until when it holds."""

    pose: np.ndarray | None = None
    keys: set[str] = field(default_factory=set)
    at: float = 0.0  # time.time() it was set
    version: int = 0
    until: float = 0.0  # time.time(); inf = until released

    def active(self, now: float) -> bool:
        return self.pose is not None and now < self.until

    def remaining(self, now: float) -> float | None:
        """Seconds left, -1.0 for "until released", None when not holding."""
        if not self.active(now):
            return None
        return -1.0 if math.isinf(self.until) else self.until - now

    def set(self, pose: np.ndarray, keys: set[str], now: float, hold: float, replace: bool) -> None:
        self.keys = set(keys) | (self.keys if self.active(now) and not replace else set())
        self.pose, self.at = pose, now
        self.version += 1
        self.until = math.inf if hold == 0 else now + hold

    def release(self) -> None:
        self.until = 0.0


def _percentiles(values) -> dict:
    if not values:
        return {"p50": None, "p99": None}
    a = np.fromiter(values, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p99": round(float(np.percentile(a, 99)), 3)}


class StreamStats:
    """Counts and timing windows of one stream (the `stats` reply)."""

    def __init__(self):
        self.frames = self.idle_frames = self.superseded = 0
        self.fixes = PoseFixes()  # values the render path had to repair, counted once per arriving pose
        self.render_ms = deque(maxlen=STATS_WINDOW)
        self.wait_ms = deque(maxlen=STATS_WINDOW)
        self.publish_ms = deque(maxlen=STATS_WINDOW)
        self.latency_ms = deque(maxlen=STATS_WINDOW)
        self.published_at = deque(maxlen=1024)  # monotonic, for fps
        self.body_ms = deque(maxlen=STATS_WINDOW)  # two rates: the body passes (body worker thread)
        self.body_passes: Counter[str] = Counter()  # ... by why they ran
        self.body_made: Counter[str] = Counter()  # ... how each shown frame's body was made

    def frame(self, t_pose: float, t_start: float, t_end: float, t_published: float, measured: bool) -> None:
        """One published frame; `measured`: it shows a newly arrived pose (idle frames have no arrival)."""
        self.frames += 1
        self.published_at.append(time.monotonic())
        self.render_ms.append((t_end - t_start) * 1000.0)
        self.publish_ms.append((t_published - t_end) * 1000.0)
        if measured:
            self.wait_ms.append(max(t_start - t_pose, 0.0) * 1000.0)
            self.latency_ms.append(max(t_published - t_pose, 0.0) * 1000.0)
        else:
            self.idle_frames += 1

    def body_pass(self, ms: float, why: str) -> None:
        self.body_ms.append(ms)
        self.body_passes[why] += 1

    def fps(self) -> float:
        now = time.monotonic()
        recent = [t for t in self.published_at if now - t <= 2.0]
        if len(recent) >= 2 and recent[-1] > recent[0]:
            return (len(recent) - 1) / (recent[-1] - recent[0])
        return 0.0

    def to_dict(self) -> dict:
        return {"fps": round(self.fps(), 2), "frames": self.frames, "idle_frames": self.idle_frames,
                "render_ms": _percentiles(self.render_ms), "wait_ms": _percentiles(self.wait_ms),
                "publish_ms": _percentiles(self.publish_ms), "latency_ms": _percentiles(self.latency_ms),
                "poses_superseded": self.superseded,
                "pose_fixes": {"non_finite": self.fixes.non_finite, "out_of_range": self.fixes.out_of_range},
                **({"body": {"passes": dict(self.body_passes), "pass_ms": _percentiles(self.body_ms),
                             "frames": dict(self.body_made)}} if self.body_passes or self.body_made else {})}


class Stream:
    def __init__(self, name: str, spec: str, poser, alpha: str, region: Region | None = None):
        self.name, self.spec, self.poser, self.alpha = name, spec, poser, alpha
        self.region = region  # a crop of the frame (checked against the poser), or None: the whole frame
        self.control = ControlHold()
        # Two rates (a student in fast mode): the body keys the compose passes estimate each frame's body from
        self.bodies = BodyTrack() if getattr(poser, "two_rate", False) else None
        self.layers = Layers()  # expression, injected sources, talking (layers.py: the composition order)
        self.stats = StreamStats()
        # The scheduler's bookkeeping.
        self.rendered_version = None
        self.last_render = -math.inf  # monotonic
        self.pending = False  # a pose arrived that has not been rendered yet
        self.seq = 0
        self.source = "idle"

    def offer(self) -> None:
        """A new pose for this stream arrived: it supersedes one that was still waiting for a render."""
        if self.pending:
            self.stats.superseded += 1
        self.pending = True

    def info(self, sink: FrameSink) -> dict:
        desc = self.poser.describe()
        kind = desc.get("kind", type(self.poser).__name__)
        w, h = self.size()
        d = {"name": self.name, "student": self.spec, "kind": kind, "device": str(self.poser.device),
             "width": w, "height": h, "alpha": self.alpha, "format": "rgba8"}
        if self.region is not None:  # since 1.2: where the crop lies in the whole frame
            d.update(region=[self.region.x, self.region.y, w, h], full_width=self.poser.image_size,
                     full_height=self.poser.image_size)
        if "arithmetic" in desc:  # which precision renders this stream, and why (since 1.2)
            d["arithmetic"] = desc["arithmetic"]
        if "visibility_mask" in desc:  # only the pixels that can show (fast mode; since 1.2)
            d["visibility_mask"] = desc["visibility_mask"]
        d.update(sink.describe(self.name))
        return d

    def size(self) -> tuple[int, int]:
        """(width, height) of this stream's frames."""
        if self.region is None:
            return self.poser.image_size, self.poser.image_size
        return self.region.w, self.region.h

    def placement(self) -> tuple[int, int, int, int] | None:
        """A crop's (x, y, full width, full height) for the sink; None for the whole frame."""
        if self.region is None:
            return None
        return self.region.x, self.region.y, self.poser.image_size, self.poser.image_size

    def stats_dict(self) -> dict:
        return {**self.stats.to_dict(), "seq": self.seq, "source": self.source}


class StreamRegistry:
    """Streams by name, the posers they share, loads in flight, and streams waiting to be closed."""

    def __init__(self, sink: FrameSink, device: str, mode: str, lock, backend: str = "torch",
                 providers: str | None = None):
        self.sink, self.device, self.mode, self.lock = sink, device, mode, lock
        self.backend, self.providers = backend, providers  # load_poser's; the same for every stream
        self.streams: dict[str, Stream] = {}
        self.closing = False  # set at shutdown: a load that finishes then must not leave a ring file
        self._posers: dict[tuple, object] = {}
        self._loading: set[str] = set()
        self._retired: list[tuple[Stream, object]] = []

    # --- names ---------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        with self.lock:
            return list(self.streams)

    def resolve(self, name, allow_all: bool = False) -> list[str]:
        """The streams a request's `stream` field names: omitted means the only one; "*" all (if allowed)."""
        names = self.names()
        if name is None:
            if len(names) == 1:
                return names
            raise RequestError("bad_request", f"say which stream ('stream' field): one of {', '.join(names) or 'none'}")
        if not isinstance(name, str):
            raise RequestError("bad_request", "'stream' must be a string")
        if allow_all and name == "*":
            return names
        if name not in names:
            raise RequestError("unknown_stream", f"no stream named {name!r} (running: {', '.join(names) or 'none'})")
        return [name]

    def reserve(self, name: str) -> None:
        """Claim a name for a load in flight (refused while a stream or another load has it)."""
        check_stream_name(name)
        with self.lock:
            if name in self.streams or name in self._loading:
                raise RequestError("bad_request", f"a stream named {name!r} is already running")
            self._loading.add(name)

    def unreserve(self, name: str) -> None:
        with self.lock:
            self._loading.discard(name)

    # --- models and streams --------------------------------------------------------------------------------
    def poser_for(self, spec: str):
        """The poser for `spec` ("demo" or a folder), loaded once per student, device and mode — may take
        seconds; called without the lock, from the main thread at start-up or a loader thread."""
        from ..load import load_poser

        key = (spec if spec == DEMO else str(Path(spec).resolve()), self.device, self.mode, self.backend)
        with self.lock:
            poser = self._posers.get(key)
        if poser is None:
            poser = load_poser(spec, device=self.device, mode=self.mode, backend=self.backend,
                               providers=self.providers)
            with self.lock:
                poser = self._posers.setdefault(key, poser)
        return poser

    def add(self, name: str, spec: str, poser, alpha: str, region: Region | None = None) -> Stream:
        check_stream_name(name)
        if region is not None:
            try:
                region = region.check(poser.image_size, poser.image_size, f"stream {name}'s region")
            except RegionError as e:
                raise RequestError("bad_request", str(e)) from None
            if region.is_full(poser.image_size, poser.image_size):
                region = None
        with self.lock:
            if self.closing:
                raise RequestError("unavailable", "the daemon is shutting down")
            if name in self.streams:
                raise RequestError("bad_request", f"a stream named {name!r} is already running")
            s = Stream(name, spec, poser, alpha, region)
            self.sink.open(name, *s.size(), alpha, placement=s.placement())
            s.offer()  # its first frame is due at once
            self.streams[name] = s
        return s

    def retire(self, name: str, done) -> None:
        """Take stream `name` out now; the render thread closes it and then calls `done(stream)`."""
        with self.lock:
            s = self.streams.pop(name)
            self._retired.append((s, done))

    def close_retired(self) -> list[tuple[Stream, object]]:
        """Render thread: close retired streams' outputs, free models nobody shows; returns (stream, done)."""
        with self.lock:
            retired, self._retired = self._retired, []
        for s, _ in retired:
            self.sink.close_stream(s.name)
            with self.lock:
                if all(o.poser is not s.poser for o in self.streams.values()):
                    self._posers = {k: p for k, p in self._posers.items() if p is not s.poser}
        return retired

    def offer_all(self, now: float) -> None:
        """A tracked pose arrived: every stream not held by the control socket has a new pose."""
        with self.lock:
            for s in self.streams.values():
                if not s.control.active(now):
                    s.offer()

    def all(self) -> list[Stream]:
        """The running streams (a snapshot)."""
        with self.lock:
            return list(self.streams.values())

    def infos(self) -> list[dict]:
        with self.lock:
            return [s.info(self.sink) for s in self.streams.values()]

    def close(self) -> None:
        with self.lock:
            self.closing = True
            self.streams.clear()
            self._retired.clear()

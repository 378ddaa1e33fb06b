"""The daemon's services as the control commands use them: a small typed interface, the same for the ZeroMQ
control socket, OSC requests and the web part (they differ only in how a deferred reply travels back).

  Streams    the running streams: look-ups, poses, layers, loads and unloads, statistics. Every change takes
             the registry lock, marks the stream as having a new pose and wakes the render thread, here and
             nowhere else.
  Trackers   the tracker hub, or the one sentence saying tracker input is off.
  Services   what a command receives: the two above, the expression library, the daemon's identity and stop.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..pose import INDEX, NEUTRAL, pose_to_dict
from ..region import Region
from ..transport.control import RequestError
from ..transport.sink import FrameSink
from .framepose import FramePoses
from .streams import Stream, StreamRegistry

log = logging.getLogger("tha4bridge.serve")

Reply = Callable[[dict], None]  # sends a deferred command's reply (a loader or the render thread calls it)


class Streams:
    def __init__(self, registry: StreamRegistry, sink: FrameSink, poses: FramePoses, wake: Callable[[], None],
                 alpha: str = "straight", region_of: Callable[[str], Region | None] = lambda name: None):
        """`wake`: tells the render thread a pose changed; `alpha`, `region_of`: serve's defaults for a `load`
        that does not say (--alpha, --region [NAME=])."""
        self._registry, self._sink, self._poses, self.wake = registry, sink, poses, wake
        self._alpha, self._region_of = alpha, region_of

    # --- reading ------------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return self._registry.names()

    def resolve(self, name, allow_all: bool = False) -> list[str]:
        """The streams a request's `stream` field names: omitted means the only one; "*" all (if allowed)."""
        return self._registry.resolve(name, allow_all)

    def find(self, name: str) -> Stream | None:
        """The running stream `name` (its spec, poser and region), or None."""
        with self._registry.lock:
            return self._registry.streams.get(name)

    def infos(self) -> list[dict]:
        return self._registry.infos()

    def stats(self) -> dict:
        with self._registry.lock:
            now = time.time()
            return {name: {**s.stats_dict(), "layers": s.layers.summary(now)}
                    for name, s in self._registry.streams.items()}

    def pose(self, name: str) -> dict:
        """`get_pose`'s answer: the pose stream `name` shows now, where it came from and each layer's share."""
        tracked = self._poses.tracked()  # the freshest tracked pose, not the one of the render thread's last pass
        now = time.time()
        with self._registry.lock:
            s = self._stream(name)
            view = self._poses.view(s, tracked, now)
            remaining = s.control.remaining(now)
        layers: dict = {}
        pose, _ = self._poses.compose(s, view, now, layers)
        return {"stream": name, "pose": pose_to_dict(pose), "source": view.source, "received_at": view.t_pose,
                "hold_remaining": remaining, "t": now, "layers": layers}

    # --- changing -----------------------------------------------------------------------------------------------
    def _stream(self, name: str) -> Stream:
        s = self._registry.streams.get(name)
        if s is None:  # unloaded between the request's check and now
            raise RequestError("unknown_stream", f"no stream named {name!r}")
        return s

    def _change(self, names: list[str], change: Callable[[Stream, float], None]) -> float:
        """Apply `change(stream, now)` to each named stream under the lock, mark each as having a new pose and
        wake the render thread; returns `now`, the daemon-clock moment it took effect."""
        now = time.time()
        with self._registry.lock:
            streams = [self._stream(n) for n in names]  # all or nothing: a vanished stream changes none
            for s in streams:
                change(s, now)
                s.offer()
        self.wake()
        return now

    def set_pose(self, names: list[str], values: dict[str, float], hold: float, replace: bool) -> None:
        """Hold `values` over each stream's current pose (over neutral with `replace`) for `hold` s (0: until
        released)."""
        tracked = None if replace else self._poses.tracked()

        def change(s: Stream, now: float) -> None:
            p = np.array(NEUTRAL if replace else self._poses.view(s, tracked, now).pose, dtype=np.float32, copy=True)
            for k, v in values.items():
                p[INDEX[k]] = v
            s.control.set(p, set(values), now, hold, replace)

        self._change(names, change)

    def release(self, names: list[str], source: str | None) -> list[str]:
        """With `source`: that source's injection only; without: the control hold and every injection. Returns
        the injected sources released."""
        released: list[str] = []

        def change(s: Stream, now: float) -> None:
            if source is None:
                s.control.release()
            with s.layers.lock:
                gone = [source] if source in s.layers.sources else [] if source else list(s.layers.sources)
                for n in gone:
                    del s.layers.sources[n]
                s.layers.changed()
            released.extend(gone)

        self._change(names, change)
        return sorted(set(released))

    def change_layers(self, names: list[str], change: Callable) -> float:
        """Apply `change(layers, now)` to each stream's layers (expression, injected, talking)."""
        def apply(s: Stream, now: float) -> None:
            with s.layers.lock:
                change(s.layers, now)
                s.layers.changed()

        return self._change(names, apply)

    # --- loading and unloading ----------------------------------------------------------------------------------
    def open(self, name: str, spec: str, alpha: str | None = None, region: Region | None = None) -> Stream:
        """Load `spec` (or share its loaded model) and start showing it (or the crop `region` of it) as stream
        `name` — may take seconds; call it off the main thread once the daemon runs."""
        poser = self._registry.poser_for(spec)
        s = self._registry.add(name, spec, poser, alpha or self._alpha, region)
        self.wake()
        path = s.info(self._sink)["path"]
        log.info("stream %s: loaded %s (%s on %s)%s", name, spec, type(poser).__name__, poser.device,
                 f", ring {path}" if path else "")
        return s

    def load(self, name: str, spec: str, alpha: str | None, region: Region | None, reply: Reply) -> None:
        """Claim `name` now (refused at once when taken), then load on a thread of its own and `reply` with the
        `load` answer. Without `region`, serve's --region for this name applies."""
        region = region or self._region_of(name)
        self._registry.reserve(name)

        def work() -> None:
            try:
                s = self.open(name, spec, alpha, region)
                answer = {"ok": True, "stream": s.info(self._sink)}
            except RequestError as e:
                answer = {"ok": False, "code": e.code, "error": str(e)}
            except Exception as e:  # ModelFileError and friends: one line naming the file
                log.info("stream %s: load of %s failed: %s", name, spec, e)
                answer = {"ok": False, "code": "load_failed", "error": str(e) or type(e).__name__}
            finally:
                self._registry.unreserve(name)
            reply(answer)

        threading.Thread(target=work, name=f"load-{name}", daemon=True).start()

    def unload(self, name: str, reply: Reply) -> None:
        """Take stream `name` out now; the render thread closes its outputs and then `reply`s."""
        self._registry.retire(name, lambda s: reply({"ok": True, "stream": s.name}))
        self.wake()


class Trackers:
    """The tracker hub as commands use it; without one, each call refuses with the same sentence."""

    def __init__(self, hub=None):
        self._hub = hub

    def ports(self) -> dict:
        return dict(self._hub.ports) if self._hub is not None else {}

    def stats(self) -> dict:
        if self._hub is None:
            return {}
        try:
            return self._hub.stats()
        except Exception as e:  # a receiver mid-restart: the rest of `stats` still answers
            return {"error": str(e)}

    def _need(self):
        if self._hub is None:
            raise RequestError("unavailable", "tracker input is off in this daemon (started with --no-trackers "
                                              "or without tracker support)")
        return self._hub

    def calibrate(self) -> dict:
        try:
            result = self._need().calibrate()
        except RuntimeError as e:  # no tracker data yet
            raise RequestError("not_ready", str(e)) from None
        return result if isinstance(result, dict) else {}

    def clear_calibration(self) -> None:
        self._need().clear_calibration()


@dataclass
class Identity:
    """Where this daemon listens and since when (hello, stats)."""

    control: str
    frames: str
    transport: str
    started: float


@dataclass
class Services:
    streams: Streams
    trackers: Trackers
    expressions: dict
    identity: Identity
    counters: Callable[[], dict]  # the control socket's and the publisher's counters: {"control", "publisher"}
    stop: Callable[[], None]

"""`tha4bridge serve`: poses in (trackers, control socket), RGBA frames out (shm ring + ZeroMQ, or inline).

Threads, and why:
- main: the control socket (ROUTER) and signals; replies never wait for a render.
- render: the only thread that touches posers, rings and the frame publisher. Each pass it takes the
  *latest* pose of every stream (latest wins: poses that arrived meanwhile were simply overwritten) and
  renders the streams that are due: the pose changed (no faster than --fps) or the idle period passed.
- tracker: waits on the TrackerHub and wakes the render thread when a new pose arrives.
- loader: one per `load` command, so a slow model load never stalls other streams or clients.
"""
from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zmq

from . import __version__
from .imaging import to_rgba8
from .pose import INDEX, NEUTRAL, PARAMETER_NAMES, PoseFixes, pose_to_dict, sanitize
from .transport.control import DEFERRED, ControlServer, Request, RequestError
from .transport.publisher import PROTO_MAJOR, PROTO_MINOR, FramePublisher
from .transport.ring import (ALPHA_MODES, DEFAULT_SLOTS, STREAM_NAME, FrameRing, reclaim_stale, ring_dir,
                             safe_stream_name)

log = logging.getLogger("tha4bridge.serve")

BREATHING = INDEX["breathing"]
DEFAULT_HOLD = 5.0
STATS_WINDOW = 256
UNWATCHED_INTERVAL = 1.0  # seconds between frames while no client subscribes to frames
# Render several streams that share one poser (the same student loaded twice) as one batch? Measured in
# benchmarks/bench_transport.py; on this 2-core CPU a batch of 2 was not faster than two single renders
# (the work is per pixel), so streams render in turn. Kept switchable for GPUs, where batching wins.
BATCH_SHARED_POSER = False


@dataclass
class DaemonConfig:
    students: list[tuple[str | None, str]] = field(default_factory=lambda: [(None, "demo")])
    device: str = "auto"
    mode: str = "exact"
    fps: float | None = None  # never render a stream faster than this
    idle_fps: float = 10.0  # re-render an unchanged pose this often (idle breathing keeps going)
    breathing_period: float = 4.0  # seconds per idle breath; 0 disables the daemon's breathing
    control: str = "tcp://127.0.0.1:5590"
    frames: str = "tcp://127.0.0.1:5591"
    transport: str = "shm"
    alpha: str = "straight"
    stream_alpha: dict[str, str] = field(default_factory=dict)  # per stream name, overrides `alpha`
    slots: int = DEFAULT_SLOTS
    trackers: bool = True
    vmc_port: int = 39539
    ifm_port: int = 49983
    ifm_phone: str | None = None
    tracker_host: str = "0.0.0.0"
    mapping_file: str | None = None
    calibration_file: str | None = None  # None: the tracker hub's default (~/.config/tha4bridge/)
    threads: int | None = None  # torch CPU threads; None = half the cores (see _set_threads)


def _percentiles(values) -> dict:
    if not values:
        return {"p50": None, "p99": None}
    a = np.fromiter(values, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p99": round(float(np.percentile(a, 99)), 3)}


class Stream:
    """One character: its poser, ring, the pose it should show and its timing statistics."""

    def __init__(self, name: str, spec: str, poser, alpha: str, ring: FrameRing | None):
        self.name, self.spec, self.poser, self.alpha, self.ring = name, spec, poser, alpha, ring
        # Control-socket override (game-driven): the pose, which names it set, until when it holds.
        self.control_pose: np.ndarray | None = None
        self.control_keys: set[str] = set()
        self.control_at = 0.0
        self.control_version = 0
        self.hold_until = 0.0
        # Render bookkeeping (render thread).
        self.rendered_version = None
        self.last_render = -math.inf  # monotonic
        self.pending = False  # a pose arrived that has not been rendered yet
        self.superseded = 0
        self.frames = 0
        self.idle_frames = 0
        self.seq = 0
        self.source = "idle"
        self.render_ms = deque(maxlen=STATS_WINDOW)
        self.wait_ms = deque(maxlen=STATS_WINDOW)
        self.publish_ms = deque(maxlen=STATS_WINDOW)
        self.latency_ms = deque(maxlen=STATS_WINDOW)
        self.published_at = deque(maxlen=1024)  # monotonic, for fps

    def offer(self) -> None:
        """A new pose for this stream arrived (called under the daemon lock)."""
        if self.pending:
            self.superseded += 1
        self.pending = True

    def info(self, transport: str) -> dict:
        d = self.poser.describe()
        return {"name": self.name, "student": self.spec, "kind": d.get("kind", type(self.poser).__name__),
                "device": str(self.poser.device), "width": self.poser.image_size, "height": self.poser.image_size,
                "alpha": self.alpha, "format": "rgba8", "transport": transport,
                "path": str(self.ring.path) if self.ring else "",
                "generation": self.ring.generation if self.ring else 0,
                "slots": self.ring.layout.slot_count if self.ring else 0}

    def stats(self) -> dict:
        now = time.monotonic()
        recent = [t for t in self.published_at if now - t <= 2.0]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) >= 2 and recent[-1] > recent[0] else 0.0
        fixes = getattr(self.poser, "fixes", PoseFixes())
        return {"fps": round(fps, 2), "frames": self.frames, "idle_frames": self.idle_frames, "seq": self.seq,
                "render_ms": _percentiles(self.render_ms), "wait_ms": _percentiles(self.wait_ms),
                "publish_ms": _percentiles(self.publish_ms), "latency_ms": _percentiles(self.latency_ms),
                "poses_superseded": self.superseded,
                "pose_fixes": {"non_finite": fixes.non_finite, "out_of_range": fixes.out_of_range},
                "source": self.source}


def lan_addresses() -> list[str]:
    """IPv4 addresses a phone on the same network could send tracker packets to."""
    found = []
    try:  # the address of the default route (a UDP connect sends nothing)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(info[4][0])
    except OSError:
        pass
    return [a for a in dict.fromkeys(found) if not a.startswith("127.")]


def _load_hub_module():
    try:
        from .trackers import hub
    except ImportError:
        return None
    return hub


class Daemon:
    def __init__(self, config: DaemonConfig):
        if config.transport not in ("shm", "inline"):
            raise ValueError(f"--transport must be shm or inline, got {config.transport!r}")
        for alpha in (config.alpha, *config.stream_alpha.values()):
            if alpha not in ALPHA_MODES:
                raise ValueError(f"--alpha must be straight or premultiplied, got {alpha!r}")
        self.config = config
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.streams: dict[str, Stream] = {}
        self._retire: list[tuple[Stream, Request | None]] = []
        self._posers: dict[tuple, object] = {}
        self._loading: set[str] = set()
        self.started = time.time()
        self.started_mono = time.monotonic()
        self.hub = None
        self.tracked = None  # the newest TrackedPose from the hub
        self._tracker_taken = threading.Event()
        self.ctx = zmq.Context()
        self.control = self.publisher = None
        self._threads: list[threading.Thread] = []

    # --- setup -------------------------------------------------------------------------------------
    def _set_threads(self) -> None:
        # Measured on the 2-core CI box while other processes ran: the demo render took 151 ms with 1 torch
        # thread and 3.2 s with 2 (OpenMP workers spin-waiting against other busy processes). A streamer's PC
        # also runs a game and OBS, so by default leave half the cores to them.
        import torch

        n = self.config.threads or max(1, (os.cpu_count() or 2) // 2)
        torch.set_num_threads(n)
        log.info("torch CPU threads: %d", n)

    def start(self) -> None:
        self._set_threads()
        if self.config.transport == "shm":
            for path in reclaim_stale():
                log.info("reclaimed stale ring file %s (its daemon is gone)", path)
        self.publisher = FramePublisher(self.config.frames, self.ctx)
        self.control = ControlServer(self.config.control, self.ctx)
        for name, spec in self.config.students:
            name, spec, poser, _ = self._load(name, spec, self.config.alpha)
            self._add_stream(name, spec, poser, self.config.stream_alpha.get(name, self.config.alpha))
        if self.config.trackers:
            self._start_trackers()
        self._spawn(self._render_loop, "render")
        if self.hub is not None:
            self._spawn(self._tracker_loop, "tracker")
        self._print_banner()

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _start_trackers(self) -> None:
        hub_mod = _load_hub_module()
        if hub_mod is None:
            log.info("tracker receivers not available in this build; poses come from the control socket")
            return
        c = self.config
        # /tha4/ parameter messages share the VMC port (the hub's default assumes the default port)
        cfg = hub_mod.TrackerConfig(vmc_port=c.vmc_port, ifm_port=c.ifm_port, ifm_phone=c.ifm_phone,
                                    osc_param_port=c.vmc_port, host=c.tracker_host, mapping_file=c.mapping_file,
                                    calibration_file=c.calibration_file)
        self.hub = hub_mod.TrackerHub(cfg)
        self.hub.start()

    def _load(self, name: str | None, spec: str, alpha: str) -> tuple[str, str, object, str]:
        """Load a poser (shared when the same student is loaded twice) — may take seconds."""
        from .student import load_poser

        if name is None:
            name = "demo" if spec == "demo" else safe_stream_name(Path(spec).resolve().name)
        if not STREAM_NAME.match(name):
            raise RequestError("bad_request", f"stream name {name!r} must be 1-63 characters of A-Z a-z 0-9 _ . -")
        key = (spec if spec == "demo" else str(Path(spec).resolve()), self.config.device, self.config.mode)
        poser = self._posers.get(key)
        if poser is None:
            poser = load_poser(spec, device=self.config.device, mode=self.config.mode)
            self._posers[key] = poser
        return name, spec, poser, alpha

    def _add_stream(self, name: str, spec: str, poser, alpha: str) -> Stream:
        with self.lock:
            if self.stop_event.is_set():  # a load that finished during shutdown must not leave a ring file
                raise RequestError("unavailable", "the daemon is shutting down")
            if name in self.streams:
                raise RequestError("bad_request", f"a stream named {name!r} is already running")
            ring = None
            if self.config.transport == "shm":
                ring = FrameRing(name, poser.image_size, poser.image_size, alpha=alpha, slot_count=self.config.slots)
            s = Stream(name, spec, poser, alpha, ring)
            s.offer()
            self.streams[name] = s
        self.wake.set()
        log.info("stream %s: loaded %s (%s on %s)%s", name, spec, type(poser).__name__, poser.device,
                 f", ring {ring.path}" if ring else "")
        return s

    def _print_banner(self) -> None:
        lines = [f"tha4bridge {__version__} serving (pid {os.getpid()}, protocol {PROTO_MAJOR}.{PROTO_MINOR})",
                 f"  control: {self.control.endpoint}",
                 f"  frames:  {self.publisher.endpoint} ({self.config.transport})"]
        for s in self.streams.values():
            lines.append(f"  stream {s.name}: {s.spec}" + (f" -> {s.ring.path}" if s.ring else ""))
        for what, ep in (("control", self.control.endpoint), ("frames", self.publisher.endpoint)):
            if ep.startswith("tcp://") and not ep.startswith(("tcp://127.", "tcp://localhost", "tcp://[::1]")):
                lines.append(f"  note: the {what} socket is reachable from the network (no authentication)")
        if self.hub is not None:
            ports = ", ".join(f"{k} udp {v}" for k, v in getattr(self.hub, "ports", {}).items())
            lines.append(f"  trackers: {ports or 'started'}")
            addrs = lan_addresses()
            lines.append(f"  phone: send to {' or '.join(addrs) if addrs else 'this computer’s LAN address'}")
        else:
            lines.append("  trackers: off (set poses with the control socket)")
        print("\n".join(lines), flush=True)

    # --- main loop (control socket) ----------------------------------------------------------------
    def serve_forever(self) -> None:
        """Answer the control socket until `stop_event` (set by signals, `shutdown`), then clean up."""
        try:
            while not self.stop_event.is_set():
                self.control.poll(self.handle, timeout_ms=100)
        finally:
            self.close()

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM stop the daemon cleanly; during start-up (loading models) they abort it, and
        `serve` removes the ring files created so far."""
        def on_signal(signum, _frame):
            log.info("received %s, shutting down", signal.Signals(signum).name)
            self.stop_event.set()
            if not self._threads:  # still starting: unwind out of the model load
                raise KeyboardInterrupt

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, on_signal)
            except (ValueError, OSError):  # not the main thread / platform without it
                pass

    def close(self) -> None:
        self.stop_event.set()
        self.wake.set()
        for t in self._threads:
            t.join(timeout=10.0)
        if self.hub is not None:
            try:
                self.hub.stop()
            except Exception as e:
                log.info("tracker hub stop failed: %s", e)
        if self.control is not None:
            self.control.poll(self.handle, timeout_ms=0)  # flush deferred replies (e.g. shutdown)
            self.control.close()
        if self.publisher is not None:
            self.publisher.close()
        with self.lock:
            streams = list(self.streams.values()) + [s for s, _ in self._retire]
            self.streams.clear()
            self._retire.clear()
        for s in streams:
            if s.ring is not None:
                s.ring.close()
        self.ctx.destroy(linger=0)  # also closes a socket whose bind failed half-way
        log.info("stopped; ring files removed")

    # --- render thread -----------------------------------------------------------------------------
    def _effective_pose(self, s: Stream, now: float):
        """(pose [45], t_pose, source, version, explicit_breathing) that stream `s` should show now.

        `version` changes exactly when a new pose arrived; an unchanged version re-renders at the idle rate.
        A live tracker drives the stream unless a control hold is active; when no tracker is live, a control
        pose stays (a game's NPC keeps its expression); with neither, the hub's idle motion (or neutral) shows.
        """
        held = s.control_pose is not None and now < s.hold_until
        tracked = self.tracked
        if not held and tracked is not None and (tracked.live or s.control_pose is None):
            pose = np.asarray(tracked.pose, dtype=np.float32)
            if tracked.live:
                return pose, tracked.received_at, f"tracker:{tracked.source}", ("t", tracked.received_at), True
            # the hub's idle motion (breathing, blinks, sway) changes with the clock, not with packets
            return pose, tracked.received_at, "idle", ("idle",), True
        if s.control_pose is not None:
            return s.control_pose, s.control_at, "control", ("c", s.control_version), \
                "breathing" in s.control_keys
        return NEUTRAL, self.started, "idle", ("n", 0), False

    def _render_loop(self) -> None:
        min_interval = 1.0 / self.config.fps if self.config.fps else 0.0
        idle_interval = 1.0 / self.config.idle_fps if self.config.idle_fps > 0 else math.inf
        idle_interval = max(idle_interval, min_interval)  # --fps caps idle frames too
        while not self.stop_event.is_set():
            try:
                self._close_retired()
                if self.publisher.poll_subscriptions():
                    log.info("frame subscribers: %d", self.publisher.subscribers)
                    for s in self.streams.values():
                        s.last_render = -math.inf  # someone new is watching: a fresh frame now
                # Nobody watching: keep the last frame (and its cached header) fresh, but slowly, so an
                # idle daemon does not spend a core on frames no one sees.
                unwatched = self.publisher.subscribers == 0
                mono, now = time.monotonic(), time.time()
                self._poll_tracker()
                due, next_due = [], math.inf
                with self.lock:
                    self.wake.clear()
                    for s in self.streams.values():
                        pose, t_pose, source, version, breathing = self._effective_pose(s, now)
                        changed = version != s.rendered_version
                        interval = min_interval if changed else idle_interval
                        if unwatched:
                            interval = max(interval, UNWATCHED_INTERVAL)
                        at = s.last_render + interval
                        if mono >= at:
                            due.append((at, s, pose, t_pose, source, version, breathing, changed))
                        else:
                            next_due = min(next_due, at)
                    if due:
                        # One render per pass, the most overdue stream first (fair between streams), so the
                        # next stream's pose is read again after this render: latest wins for every stream.
                        due.sort(key=lambda item: item[0])
                        first = due[0][1]
                        due = [d[1:] for d in due
                               if d[1] is first or (BATCH_SHARED_POSER and d[1].poser is first.poser)]
                        for d in due:
                            d[0].pending = False  # taken: a pose arriving from now on supersedes nothing yet
                if due:
                    self._render(due)
                    continue
                self.wake.wait(min(max(next_due - time.monotonic(), 0.0), 0.02))
            except Exception:
                log.exception("render loop error (continuing)")
                time.sleep(0.1)

    def _render(self, due: list) -> None:
        groups: dict[tuple, list] = {}
        for item in due:
            s = item[0]
            key = (id(s.poser), s.alpha) if BATCH_SHARED_POSER else (id(s), s.alpha)
            groups.setdefault(key, []).append(item)
        for items in groups.values():
            poses = np.stack([self._with_breathing(pose, breathing) for _, pose, _, _, _, breathing, _ in items])
            t_start = time.time()
            frames = items[0][0].poser.render(poses)
            rgba = to_rgba8(frames, premultiplied=items[0][0].alpha == "premultiplied").cpu()
            t_end = time.time()
            for i, (s, _, t_pose, source, version, _, changed) in enumerate(items):
                self._publish(s, rgba[i].numpy(), poses[i], t_pose, t_start, t_end, source, changed)
                s.rendered_version = version

    def _with_breathing(self, pose: np.ndarray, explicit: bool) -> np.ndarray:
        """Keep breathing alive under a control pose that does not set it: the hub's idle breathing when
        trackers run (so it stays in phase with tracked frames), else our own cycle."""
        period = self.config.breathing_period
        if explicit or period <= 0:
            return pose
        p = pose.copy()
        if self.tracked is not None:
            p[BREATHING] = self.tracked.pose[BREATHING]
        else:
            p[BREATHING] = 0.5 - 0.5 * math.cos(2.0 * math.pi * (time.monotonic() - self.started_mono) / period)
        return p

    def _publish(self, s: Stream, pixels: np.ndarray, pose: np.ndarray, t_pose: float, t_start: float,
                 t_end: float, source: str, changed: bool) -> None:
        header = {"proto": PROTO_MAJOR, "proto_minor": PROTO_MINOR, "stream": s.name, "seq": 0,
                  "generation": 0, "width": pixels.shape[1], "height": pixels.shape[0],
                  "stride": pixels.shape[1] * 4, "format": "rgba8", "alpha": s.alpha, "color_space": "srgb",
                  "transport": self.config.transport, "size": pixels.nbytes,
                  "t_pose": t_pose, "t_render_start": t_start, "t_render_end": t_end, "t_published": 0.0,
                  "pose_source": source, "pose": pose.tolist()}
        if s.ring is not None:
            seq, slot, view = s.ring.begin()
            np.copyto(view, pixels, casting="no")
            s.ring.commit(seq, slot, t_pose=t_pose, t_render_start=t_start, t_render_end=t_end)
            header.update(seq=seq, generation=s.ring.generation, path=str(s.ring.path), slot=slot,
                          offset=s.ring.offset(slot))
            payload = None
        else:
            seq = s.seq + 1
            header["seq"] = seq
            payload = pixels  # a fresh array per frame: safe to hand to ZeroMQ without copying
        header["t_published"] = t_pub = time.time()
        self.publisher.publish(s.name, header, payload)
        s.seq = seq
        s.source = source
        s.frames += 1
        s.last_render = time.monotonic()
        s.published_at.append(s.last_render)
        s.render_ms.append((t_end - t_start) * 1000.0)
        s.publish_ms.append((t_pub - t_end) * 1000.0)
        if changed and source != "idle":  # idle poses have no arrival to measure from
            s.wait_ms.append(max(t_start - t_pose, 0.0) * 1000.0)
            s.latency_ms.append(max(t_pub - t_pose, 0.0) * 1000.0)
        else:
            s.idle_frames += 1

    def _close_retired(self) -> None:
        with self.lock:
            retired, self._retire = self._retire, []
        for s, request in retired:
            if s.ring is not None:
                s.ring.close()
            self.publisher.forget(s.name)
            with self.lock:  # free the model when no stream shows it any more
                if all(o.poser is not s.poser for o in self.streams.values()):
                    self._posers = {k: p for k, p in self._posers.items() if p is not s.poser}
            log.info("stream %s: unloaded", s.name)
            if request is not None:
                self.control.reply_later(request, {"ok": True, "stream": s.name})

    # --- tracker thread ----------------------------------------------------------------------------
    def _poll_tracker(self) -> None:
        """Render thread: the hub's pose now (its idle motion moves with the clock); log connect/lost."""
        if self.hub is None:
            return
        tp = self.hub.current()
        self._tracker_taken.set()
        was = self.tracked
        with self.lock:
            self.tracked = tp
        if tp.live and (was is None or not was.live):
            log.info("tracker connected (%s)", tp.source)
        elif was is not None and was.live and not tp.live:
            log.info("tracker lost (%s); idle motion takes over", was.source)

    def _tracker_loop(self) -> None:
        """Wakes the render loop as soon as the hub has a new tracked pose (latest wins: no queue)."""
        while not self.stop_event.is_set():
            try:
                if not self.hub.wait(0.2):
                    continue
                now = time.time()
                with self.lock:
                    for s in self.streams.values():
                        if not (s.control_pose is not None and now < s.hold_until):
                            s.offer()
                self._tracker_taken.clear()
                self.wake.set()
                # wait() stays true until the render thread's current() takes the pose: don't spin meanwhile
                self._tracker_taken.wait(0.5)
            except Exception:
                log.exception("tracker loop error (continuing)")
                time.sleep(0.2)

    # --- control commands --------------------------------------------------------------------------
    def handle(self, request: Request):
        body = request.body
        proto = body.get("proto")
        if proto is not None and proto != PROTO_MAJOR:
            return {"ok": False, "code": "version", "proto": PROTO_MAJOR, "proto_minor": PROTO_MINOR,
                    "error": f"this daemon speaks tha4bridge protocol {PROTO_MAJOR}.x; the client asked for {proto!r}"}
        cmd = body.get("cmd")
        if not isinstance(cmd, str):
            raise RequestError("bad_request", "a request needs a string field 'cmd'")
        fn = getattr(self, f"cmd_{cmd}", None)
        if fn is None:
            raise RequestError("unknown_command", f"unknown command {cmd!r}; try one of {', '.join(COMMANDS)}")
        return fn(request)

    def _stream_names(self, body: dict, allow_all: bool = False) -> list[str]:
        name = body.get("stream")
        with self.lock:
            names = list(self.streams)
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

    def _stream_infos(self) -> list[dict]:
        with self.lock:
            return [s.info(self.config.transport) for s in self.streams.values()]

    def cmd_hello(self, request: Request) -> dict:
        client = request.body.get("client")
        if client:
            log.info("control: hello from %s", str(client)[:80])
        return {"ok": True, "proto": PROTO_MAJOR, "proto_minor": PROTO_MINOR, "version": __version__,
                "pid": os.getpid(), "control": self.control.endpoint, "frames": self.publisher.endpoint,
                "transport": self.config.transport, "streams": self._stream_infos(),
                "parameter_names": list(PARAMETER_NAMES),
                "trackers": dict(getattr(self.hub, "ports", {}) or {}) if self.hub is not None else {},
                "shm_dir": str(ring_dir()) if self.config.transport == "shm" else ""}

    def cmd_streams(self, request: Request) -> dict:
        return {"ok": True, "streams": self._stream_infos()}

    def cmd_get_pose(self, request: Request) -> dict:
        name = self._stream_names(request.body)[0]
        now = time.time()
        if self.hub is not None:  # the freshest tracked pose, not the one of the render thread's last pass
            tracked = self.hub.current()
            with self.lock:
                self.tracked = tracked
        with self.lock:
            s = self.streams[name]
            pose, t_pose, source, _, _ = self._effective_pose(s, now)
            held = s.control_pose is not None and now < s.hold_until
            remaining = (None if not held else (-1.0 if math.isinf(s.hold_until) else s.hold_until - now))
        return {"ok": True, "stream": name, "pose": pose_to_dict(pose), "source": source,
                "received_at": t_pose, "hold_remaining": remaining}

    def cmd_set_pose(self, request: Request) -> dict:
        body = request.body
        names = self._stream_names(body, allow_all=True)
        values = body.get("pose")
        if not isinstance(values, dict):
            raise RequestError("bad_request", "'pose' must be a map of parameter name to number")
        unknown = [k for k in values if k not in INDEX]
        if unknown:
            raise RequestError("bad_pose", f"unknown pose parameter(s): {', '.join(map(str, unknown[:5]))}")
        bad = [k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
        if bad:
            raise RequestError("bad_pose", f"pose values must be numbers: {', '.join(bad[:5])}")
        hold = body.get("hold", DEFAULT_HOLD)
        if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not math.isfinite(hold) or hold < 0:
            raise RequestError("bad_request", "'hold' must be a number of seconds >= 0 (0 = until release)")
        replace = bool(body.get("replace", False))
        now = time.time()
        with self.lock:
            for name in names:
                s = self.streams[name]
                base = NEUTRAL if replace else self._effective_pose(s, now)[0]
                p = np.array(base, dtype=np.float32, copy=True)
                for k, v in values.items():
                    p[INDEX[k]] = float(v)
                p, fixes = sanitize(p)
                s.poser.fixes.add(fixes)
                held = s.control_pose is not None and now < s.hold_until
                s.control_keys = set(values) | (s.control_keys if held and not replace else set())
                s.control_pose, s.control_at = p, now
                s.control_version += 1
                s.hold_until = math.inf if hold == 0 else now + float(hold)
                s.offer()
        self.wake.set()
        return {"ok": True, "stream": names, "applied": len(values), "hold": float(hold)}

    def cmd_release(self, request: Request) -> dict:
        names = self._stream_names(request.body, allow_all=True)
        with self.lock:
            for name in names:
                self.streams[name].hold_until = 0.0
                self.streams[name].offer()
        self.wake.set()
        return {"ok": True, "stream": names}

    def cmd_stats(self, request: Request) -> dict:
        with self.lock:
            streams = {name: s.stats() for name, s in self.streams.items()}
        receivers = {}
        if self.hub is not None:
            try:
                receivers = self.hub.stats()
            except Exception as e:
                receivers = {"error": str(e)}
        return {"ok": True, "uptime": round(time.time() - self.started, 3), "transport": self.config.transport,
                "streams": streams,
                "publisher": {"subscribers": self.publisher.subscribers, "messages": self.publisher.messages,
                              "send_errors": self.publisher.send_errors, "resent": self.publisher.resent},
                "receivers": receivers,
                "control": {"requests": self.control.requests, "errors": self.control.errors}}

    def cmd_load(self, request: Request):
        body = request.body
        path = body.get("path")
        if not isinstance(path, str) or not path:
            raise RequestError("bad_request", "'path' must be a student folder or \"demo\"")
        alpha = body.get("alpha", self.config.alpha)
        if alpha not in ALPHA_MODES:
            raise RequestError("bad_request", "'alpha' must be \"straight\" or \"premultiplied\"")
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise RequestError("bad_request", "'name' must be a string")
        if name is None:
            name = "demo" if path == "demo" else safe_stream_name(Path(path).resolve().name)
        with self.lock:
            if name in self.streams or name in self._loading:
                raise RequestError("bad_request", f"a stream named {name!r} is already running")
            self._loading.add(name)

        def work():
            try:
                s = self._add_stream(*self._load(name, path, alpha))
                reply = {"ok": True, "stream": s.info(self.config.transport)}
            except RequestError as e:
                reply = {"ok": False, "code": e.code, "error": str(e)}
            except Exception as e:  # ModelFileError and friends: one line naming the file
                log.info("stream %s: load of %s failed: %s", name, path, e)
                reply = {"ok": False, "code": "load_failed", "error": str(e) or type(e).__name__}
            finally:
                with self.lock:
                    self._loading.discard(name)
            self.control.reply_later(request, reply)

        threading.Thread(target=work, name=f"load-{name}", daemon=True).start()
        return DEFERRED

    def cmd_unload(self, request: Request):
        name = self._stream_names(request.body)[0] if request.body.get("stream") is not None else None
        if name is None:
            raise RequestError("bad_request", "say which stream to unload ('stream' field)")
        with self.lock:
            s = self.streams.pop(name)
            self._retire.append((s, request))
        self.wake.set()
        return DEFERRED  # answered by the render thread once the ring file is gone

    def _hub_or_refuse(self):
        if self.hub is None:
            raise RequestError("unavailable", "tracker input is off in this daemon (started with --no-trackers "
                                              "or without tracker support)")
        return self.hub

    def cmd_calibrate(self, request: Request) -> dict:
        try:
            result = self._hub_or_refuse().calibrate()
        except RuntimeError as e:  # no tracker data yet
            raise RequestError("not_ready", str(e)) from None
        log.info("tracker calibrated")
        return {"ok": True, "calibration": result if isinstance(result, dict) else {}}

    def cmd_clear_calibration(self, request: Request) -> dict:
        self._hub_or_refuse().clear_calibration()
        log.info("tracker calibration cleared")
        return {"ok": True}

    def cmd_shutdown(self, request: Request) -> dict:
        log.info("shutdown requested over the control socket")
        self.stop_event.set()
        return {"ok": True}


COMMANDS = sorted(n[4:] for n in dir(Daemon) if n.startswith("cmd_"))


def serve(config: DaemonConfig) -> int:
    """Run the daemon until SIGINT/SIGTERM or `shutdown`; returns an exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        daemon = Daemon(config)
    except ValueError as e:  # a bad option: one line, no traceback
        log.error("%s", e)
        return 2
    daemon.install_signal_handlers()
    try:
        daemon.start()
    except zmq.ZMQError as e:
        log.error("cannot bind a socket: %s (is another daemon running on these ports?)", e)
        daemon.close()
        return 2
    except (RequestError, ValueError, OSError) as e:
        log.error("%s", e)
        daemon.close()
        return 2
    except KeyboardInterrupt:
        daemon.close()
        return 0
    daemon.serve_forever()
    return 0

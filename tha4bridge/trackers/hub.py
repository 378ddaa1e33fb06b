"""TrackerHub: every tracker receiver, which one drives the pose, and the living idle around them.

Receivers run on their own threads and publish finished per-source poses here (mapped, calibrated, smoothed),
and each publish calls the listeners (the daemon's scheduler wakes there). `current()` picks the driving
source by policy, blends the animator's idle motion in when tracking is lost, applies the /tha4/ parameter
overlay, and returns the pose (without breathing: trackers never send it, and the daemon adds it to every
frame pose in daemon/framepose.py). It only reads: calling it from any thread, any number of times, changes
nothing.

Policies:
- "last-active": the live source that most recently started delivering drives (start a new tracker and it
  takes over; stop it and the previous one, if still live, takes over again).
- "priority": the first live source in `priority`.
- "per-stream": like last-active, but parameter groups named in `streams` ({"mouth": "ifacialmocap", ...})
  come from their own source while it is live. Groups: brows, eyes, iris, mouth, head, body.
A source is live while it delivered fresh data within `idle.lost_after` seconds.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..animator import Animator
from ..defaults import IFM_PORT, TRACKER_HOST, VMC_PORT
from ..pose import GROUPS
from .calibration import CalibrationStore
from .filters import SmoothingConfig
from .idle import IdleConfig, LostEnvelope
from .ifacialmocap import IFacialMocapReceiver
from .mapping import MappingConfig
from .osc import silence_python_osc_warnings
from .osc_params import OscParamReceiver, OscParamState
from .pipeline import SourcePipeline
from .settings import TrackerSettings, load_settings
from .udp import MAX_DATAGRAM
from .vmc import VmcReceiver
from .webcam import WebcamConfig, WebcamReceiver

SOURCES = ("vmc", "ifacialmocap", "webcam")
POLICIES = ("last-active", "priority", "per-stream")


@dataclass
class TrackerConfig:
    vmc_port: int | None = VMC_PORT  # None disables
    ifm_port: int | None = IFM_PORT
    ifm_phone: str | None = None  # send the iFacialMocap start string here ("ip" or "ip:port"), re-send while silent
    ifm_phone_port: int = IFM_PORT
    ifm_version: str = "v2"  # which start string: "v2" (name&value) or "v1" (name-value)
    ifm_resend: float = 2.0  # s of silence between start-string re-sends
    # The /tha4/ parameter family. The same number as vmc_port shares the VMC socket (the default: one port
    # for everything OSC); another number opens a socket of its own; None disables it.
    osc_param_port: int | None = VMC_PORT
    osc_param_timeout: float = 0.0  # s after the last /tha4/ message before the overlay lapses; 0 = never
    host: str = TRACKER_HOST  # trackers listen where phones can reach them
    mapping_file: str | None = None  # TOML (or YAML) with [mapping], [smoothing], [idle]
    policy: str = "last-active"  # or "priority", "per-stream"
    priority: tuple[str, ...] = SOURCES
    streams: dict[str, str] = field(default_factory=dict)  # per-stream: group -> source
    calibration_file: str | None = None  # default ~/.config/tha4bridge/calibration.json
    max_datagram: int = MAX_DATAGRAM
    webcam: WebcamConfig | None = None  # built-in face tracking from a camera or a video file (webcam.py)
    # Settings given directly (tests, embedding) win over mapping_file.
    mapping: MappingConfig | None = None
    smoothing: SmoothingConfig | None = None
    idle: IdleConfig | None = None

    def settings(self) -> TrackerSettings:
        s = load_settings(self.mapping_file)
        if self.mapping is not None:
            s.mapping = self.mapping
        if self.smoothing is not None:
            s.smoothing = self.smoothing
        if self.idle is not None:
            s.idle = self.idle
        s.check()
        return s

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"tracker policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        for name in self.priority:
            if name not in SOURCES:
                raise ValueError(f"unknown tracker source {name!r} in priority (known: {', '.join(SOURCES)})")
        for group, src in self.streams.items():
            if group not in GROUPS or src not in SOURCES:
                raise ValueError(f"streams maps a group ({', '.join(GROUPS)}) to a source ({', '.join(SOURCES)}), "
                                 f"got {group!r} -> {src!r}")
        if self.ifm_version not in ("v1", "v2"):
            raise ValueError(f"ifm_version must be 'v1' or 'v2', got {self.ifm_version!r}")


@dataclass
class TrackedPose:
    pose: np.ndarray  # float32 [45], mapped, calibrated, smoothed, idle-blended, sanitized
    source: str  # "vmc", "ifacialmocap", "idle", "osc-params", or e.g. "vmc+osc-params" with the overlay on
    received_at: float  # time.time() of the datagram that produced it (or of the idle tick)
    live: bool  # a tracker (or the parameter overlay) is currently delivering


class _Source:
    __slots__ = ("pose", "received_at", "fresh_at", "activated_at")

    def __init__(self):
        self.pose: np.ndarray | None = None
        self.received_at = 0.0
        self.fresh_at: float | None = None
        self.activated_at = 0.0


class TrackerHub:
    def __init__(self, config: TrackerConfig, animator: Animator | None = None):
        config.check()
        self.config = config
        self.settings = config.settings()
        self.calibration = CalibrationStore(config.calibration_file)
        self.calibration.load()
        s = self.settings
        self.pipelines = {name: SourcePipeline(name, s.mapping, s.smoothing, self.calibration) for name in SOURCES}
        self.params = OscParamState()
        self.receivers: dict = {}
        self.ports: dict[str, int] = {}
        self._cond = threading.Condition()  # an RLock: notify_all's ownership check is one C call
        self._sources = {name: _Source() for name in SOURCES}
        self._overlay: tuple[np.ndarray, np.ndarray, float] | None = None
        self.seq = 0  # counts publishes (poses and overlay changes)
        self._listeners: list = []
        # The one clock of time-driven motion; the daemon passes its own so control poses breathe in phase.
        self.animator = animator or Animator(s.idle)
        self._envelope = LostEnvelope(s.idle)
        self._streams = {g: src for g, src in config.streams.items()}

    def add_listener(self, fn) -> None:
        """`fn()` is called on a receiver thread after every publish (no lock held): wake a render loop."""
        self._listeners.append(fn)

    def take_requests(self) -> list[dict]:
        """The control requests OSC messages asked for (/tha4/expression, /tha4/talk, /tha4/mouth), oldest
        first, each taken once: a listener runs them through the daemon's command table."""
        q, out = self.params.requests, []
        while q:
            try:
                out.append(q.popleft())
            except IndexError:  # another listener took the last one
                break
        return out

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        c = self.config
        silence_python_osc_warnings()
        recv: dict = {}
        shared = c.osc_param_port is not None and c.vmc_port is not None and c.osc_param_port == c.vmc_port
        if c.vmc_port is not None:
            recv["vmc"] = VmcReceiver(c.host, c.vmc_port, self.pipelines["vmc"], self._publish,
                                      params=self.params if shared else None,
                                      publish_overlay=self._publish_overlay, max_datagram=c.max_datagram)
        if c.ifm_port is not None:
            phone, phone_port = c.ifm_phone, c.ifm_phone_port
            if phone and ":" in phone:
                phone, _, port_text = phone.rpartition(":")
                phone_port = int(port_text)
            recv["ifacialmocap"] = IFacialMocapReceiver(
                c.host, c.ifm_port, self.pipelines["ifacialmocap"], self._publish, phone=phone,
                phone_port=phone_port, version=c.ifm_version, resend_after=c.ifm_resend,
                max_datagram=c.max_datagram)
        if c.webcam is not None:
            recv["webcam"] = WebcamReceiver(c.webcam, self.pipelines["webcam"], self._publish)
        if c.osc_param_port is not None and not shared:
            recv["osc-params"] = OscParamReceiver(c.host, c.osc_param_port, self.params, self._publish_overlay,
                                                  max_datagram=c.max_datagram)
        try:
            for r in recv.values():  # bind everything first: a taken port fails before any thread runs
                r.bind()
        except (OSError, ValueError):  # ValueError: the webcam's extra, option or face model, in one line
            for r in recv.values():
                r.stop()
            raise
        self.receivers = recv
        self.ports = {name: r.port for name, r in recv.items() if r.port is not None}
        if shared:
            self.ports["osc-params"] = recv["vmc"].port
        for r in recv.values():
            r.start()

    def stop(self) -> None:
        for r in self.receivers.values():
            r._stopping.set()  # all threads see the flag at once, then join each
        for r in self.receivers.values():
            r.stop()
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> "TrackerHub":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- from receiver threads -----------------------------------------------------------------------------
    def _publish(self, name: str, pose: np.ndarray, t: float, fresh_at: float | None) -> None:
        lost_after = self.settings.idle.lost_after
        with self._cond:
            rec = self._sources[name]
            if fresh_at is not None:
                if not self._live(fresh_at):  # tracking (re)starts: the envelope eases back from here
                    self._envelope.started(fresh_at, self._last_fresh())
                if rec.fresh_at is None or fresh_at - rec.fresh_at > lost_after:
                    rec.activated_at = fresh_at  # this source (re)started delivering
            rec.pose, rec.received_at = pose, t
            if fresh_at is not None:
                rec.fresh_at = fresh_at
            self._published()

    def _publish_overlay(self, values: np.ndarray, mask: np.ndarray, t: float | None) -> None:
        with self._cond:
            self._overlay = (values, mask, time.time() if t is None else t)
            self._published()

    def _published(self) -> None:
        """Under the lock: count, wake waiters, and call the listeners once the lock is released."""
        self.seq += 1
        self._cond.notify_all()
        if self._listeners:
            # An RLock held once: release it around the calls so a listener may take other locks freely.
            self._cond.release()
            try:
                for fn in self._listeners:
                    fn()
            finally:
                self._cond.acquire()

    # -- reading (any thread, no side effects) -------------------------------------------------------------
    def _live(self, now: float) -> dict[str, _Source]:
        lost_after = self.settings.idle.lost_after
        return {n: r for n, r in self._sources.items()
                if r.pose is not None and r.fresh_at is not None and now - r.fresh_at < lost_after}

    def _last_fresh(self) -> float | None:
        times = [r.fresh_at for r in self._sources.values() if r.fresh_at is not None]
        return max(times) if times else None

    def _choose(self, live: dict[str, _Source]) -> str | None:
        if not live:
            return None
        if self.config.policy == "priority":
            for name in self.config.priority:
                if name in live:
                    return name
            return None
        return max(live, key=lambda n: live[n].activated_at)

    def _held(self) -> np.ndarray | None:
        """With no live source: the pose of the source that delivered last (the one that drove at the end)."""
        recs = [r for r in self._sources.values() if r.pose is not None and r.fresh_at is not None]
        return max(recs, key=lambda r: r.fresh_at).pose if recs else None

    def current(self, at: float | None = None) -> TrackedPose:
        """The pose now, or at the moment `at` (time.time() seconds) as far as the clock decides it: the idle
        motion and the tracking-lost ease run on; the sources hold their last packets (the two-rate daemon
        computes body key frames ahead with it)."""
        now = time.time() if at is None else at
        with self._cond:
            live = self._live(now)
            driver = self._choose(live)
            held = live[driver].pose if driver is not None else self._held()
            w = self._envelope.weight(now, self._last_fresh())
            idle = self.animator.idle_pose(now)
            if held is None or w >= 1.0:
                pose = idle
            elif w <= 0.0:
                pose = held.copy()
            else:
                pose = held * (1.0 - w) + idle * w
            for group, src in self._streams.items():
                if src in live and src != driver:
                    pose[GROUPS[group]] = live[src].pose[GROUPS[group]]
            received_at = live[driver].received_at if driver is not None else now
            source = driver or "idle"
            overlay_on = False
            if self._overlay is not None and self._overlay[1].any():
                values, mask, t_overlay = self._overlay
                timeout = self.config.osc_param_timeout
                if timeout <= 0 or now - t_overlay < timeout:
                    pose = np.where(mask, values, pose)
                    overlay_on = True
                    source = "osc-params" if driver is None else f"{driver}+osc-params"
                    if driver is None or t_overlay > received_at:
                        received_at = t_overlay
        # Every term is in range already (mapped and clamped per source, convex blends, clamped overlay); the
        # render path sanitizes once where the pose enters it (Poser.prepare) and counts what it repaired.
        return TrackedPose(pose.astype(np.float32, copy=False), source, received_at, driver is not None or overlay_on)

    def wait(self, timeout: float, after: int | None = None) -> bool:
        """Block until `seq` differs from `after` (default: its value now), or `timeout` passes."""
        with self._cond:
            seen = self.seq if after is None else after
            return self._cond.wait_for(lambda: self.seq != seen, timeout)

    def stats(self) -> dict:
        now = time.time()
        with self._cond:
            live = self._live(now)
            driver = self._choose(live)
            overlay = self._overlay
        receivers = {}
        for name, r in self.receivers.items():
            st = r.stats()  # VMC adds its own keys (perfect sync, templates, warnings)
            st["live"] = name in live or (name == "osc-params" and overlay is not None and bool(overlay[1].any()))
            receivers[name] = st
        return {
            "receivers": receivers,
            "live_source": driver,
            "live_sources": sorted(live),
            "policy": self.config.policy,
            "ports": dict(self.ports),
            "overlay_parameters": 0 if overlay is None else int(overlay[1].sum()),
            "calibrated": sorted(n for n in SOURCES if self.calibration.get(n) is not None),
            "calibration_file": str(self.calibration.path),
        }

    # -- calibration ---------------------------------------------------------------------------------------
    def calibrate(self) -> dict:
        """Store the current raw face and head of every source that delivered data as its neutral.

        Returns the stored calibration document. Raises RuntimeError if no tracker has delivered data yet.
        """
        entries = {}
        for name, p in self.pipelines.items():
            cal = p.capture()
            if cal is not None:
                entries[name] = cal
        if not entries:
            raise RuntimeError("no tracker has delivered data yet (look at the camera, then try again)")
        doc = self.calibration.store(entries)
        for p in self.pipelines.values():
            if p.filter is not None:
                p.filter.reset()
        return doc

    def clear_calibration(self) -> None:
        self.calibration.clear()

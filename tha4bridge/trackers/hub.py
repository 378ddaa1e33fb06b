"""TrackerHub: every tracker receiver, which one drives the pose, and the living idle around them.

Receivers run on their own threads and publish finished per-source poses here (mapped, calibrated, smoothed).
`current()` picks the driving source by policy, blends the idle motion in when tracking is lost, adds
breathing, applies the /tha4/ parameter overlay, and returns a pose the renderer can use as is.

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

from ..pose import LOWER, UPPER
from .calibration import CalibrationStore
from .filters import SmoothingConfig
from .idle import BREATHING, IdleConfig, IdleMotion, LostEnvelope
from .ifacialmocap import DEFAULT_PORT as IFM_PORT
from .ifacialmocap import IFacialMocapReceiver
from .mapping import MappingConfig
from .names import face_warnings
from .osc import silence_python_osc_warnings
from .osc_params import OscParamReceiver, OscParamState
from .pipeline import SourcePipeline
from .settings import TrackerSettings, load_settings
from .vmc import DEFAULT_PORT as VMC_PORT
from .vmc import VmcReceiver

SOURCES = ("vmc", "ifacialmocap")
POLICIES = ("last-active", "priority", "per-stream")
GROUPS: dict[str, np.ndarray] = {
    "brows": np.arange(0, 12),
    "eyes": np.arange(12, 24),
    "iris": np.array([24, 25, 37, 38]),
    "mouth": np.arange(26, 37),
    "head": np.arange(39, 42),
    "body": np.arange(42, 44),
}


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
    host: str = "0.0.0.0"  # trackers listen where phones can reach them
    mapping_file: str | None = None  # TOML (or YAML) with [mapping], [smoothing], [idle]
    policy: str = "last-active"  # or "priority", "per-stream"
    priority: tuple[str, ...] = SOURCES
    streams: dict[str, str] = field(default_factory=dict)  # per-stream: group -> source
    calibration_file: str | None = None  # default ~/.config/tha4bridge/calibration.json
    max_datagram: int = 32768
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
    def __init__(self, config: TrackerConfig):
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
        self._seq = 0
        self._seen_seq = 0
        now = time.time()
        self._idle = IdleMotion(s.idle, now)
        self._envelope = LostEnvelope(s.idle)
        self._held: np.ndarray | None = None  # the last driving pose, held and eased out when tracking is lost
        self._driver: str | None = None
        self._streams = {g: src for g, src in config.streams.items()}

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
        if c.osc_param_port is not None and not shared:
            recv["osc-params"] = OscParamReceiver(c.host, c.osc_param_port, self.params, self._publish_overlay,
                                                  max_datagram=c.max_datagram)
        try:
            for r in recv.values():  # bind everything first: a taken port fails before any thread runs
                r.bind()
        except OSError:
            for r in recv.values():
                r.stop()
            raise
        self.receivers = recv
        self.ports = {name: r.port for name, r in recv.items()}
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
            if fresh_at is not None and (rec.fresh_at is None or fresh_at - rec.fresh_at > lost_after):
                rec.activated_at = fresh_at  # (re)started delivering
            rec.pose, rec.received_at = pose, t
            if fresh_at is not None:
                rec.fresh_at = fresh_at
            self._seq += 1
            self._cond.notify_all()

    def _publish_overlay(self, values: np.ndarray, mask: np.ndarray, t: float | None) -> None:
        with self._cond:
            self._overlay = (values, mask, time.time() if t is None else t)
            self._seq += 1
            self._cond.notify_all()

    # -- for the render loop -------------------------------------------------------------------------------
    def _live(self, now: float) -> dict[str, _Source]:
        lost_after = self.settings.idle.lost_after
        return {n: r for n, r in self._sources.items()
                if r.pose is not None and r.fresh_at is not None and now - r.fresh_at < lost_after}

    def _choose(self, live: dict[str, _Source]) -> str | None:
        if not live:
            return None
        if self.config.policy == "priority":
            for name in self.config.priority:
                if name in live:
                    return name
            return None
        return max(live, key=lambda n: live[n].activated_at)

    def current(self) -> TrackedPose:
        now = time.time()
        with self._cond:
            live = self._live(now)
            driver = self._choose(live)
            if driver is not None:
                self._held = live[driver].pose
            self._driver = driver
            w = self._envelope.update(now, driver is not None)
            idle = self._idle.pose(now)
            if self._held is None or w >= 1.0:
                pose = idle
            elif w <= 0.0:
                pose = self._held.copy()
            else:
                pose = self._held * (1.0 - w) + idle * w
            pose[BREATHING] = idle[BREATHING]  # trackers never send breathing; it is always alive
            if self._streams:
                for group, src in self._streams.items():
                    if src in live and src != driver:
                        pose[GROUPS[group]] = live[src].pose[GROUPS[group]]
            received_at = live[driver].received_at if driver is not None else now
            source = driver or "idle"
            overlay = self._overlay
            overlay_on = False
            if overlay is not None and overlay[1].any():
                timeout = self.config.osc_param_timeout
                if timeout <= 0 or now - overlay[2] < timeout:
                    values, mask, t_overlay = overlay
                    pose = np.where(mask, values, pose)
                    overlay_on = True
                    source = "osc-params" if driver is None else f"{driver}+osc-params"
                    if driver is None or t_overlay > received_at:
                        received_at = t_overlay
            self._seen_seq = self._seq
        pose = pose.astype(np.float32, copy=False)
        if not np.isfinite(pose.sum()):
            pose = np.nan_to_num(pose, nan=0.0, posinf=0.0, neginf=0.0)
        pose = np.clip(pose, LOWER, UPPER)
        return TrackedPose(pose, source, received_at, driver is not None or overlay_on)

    def wait(self, timeout: float) -> bool:
        """Block until a pose newer than the one the last `current()` returned arrives, or `timeout` passes."""
        with self._cond:
            if self._seq != self._seen_seq:
                return True
            return self._cond.wait_for(lambda: self._seq != self._seen_seq, timeout)

    def stats(self) -> dict:
        now = time.time()
        with self._cond:
            live = sorted(self._live(now))
            driver = self._choose(self._live(now))
            overlay = self._overlay
        receivers = {}
        for name, r in self.receivers.items():
            s = r.stats()
            s["live"] = name in live or (name == "osc-params" and overlay is not None and bool(overlay[1].any()))
            receivers[name] = s
        if "vmc" in self.receivers:
            v = self.receivers["vmc"]
            receivers["vmc"].update(ignored=v.ignored, messages=v.messages, tracking_ok=v.state.tracking_ok,
                                    perfect_sync=v.state.perfect_sync, templates=sum(
                                        1 for t in v._templates.values() if t is not None),
                                    warnings=face_warnings(v.state.arkit) if v.state.perfect_sync else [])
        return {
            "receivers": receivers,
            "live_source": driver,
            "live_sources": live,
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

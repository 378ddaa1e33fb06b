"""`serve`'s options as one dataclass, checked before anything binds or loads."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..defaults import CONTROL_ENDPOINT, DEMO, FRAMES_ENDPOINT, IDLE_FPS, IFM_PORT, TRACKER_HOST, VMC_PORT
from ..load import check_backend
from ..region import Region
from ..transport.ring import DEFAULT_SLOTS, check_alpha
from ..transport.sink import check_transport
from ..web.address import parse_http
from ..web.ortweb import ort_web_dir

if TYPE_CHECKING:
    from ..trackers.webcam import WebcamConfig


@dataclass
class DaemonConfig:
    students: list[tuple[str | None, str]] = field(default_factory=lambda: [(None, DEMO)])
    device: str = "auto"
    mode: str = "exact"
    backend: str = "torch"  # or "onnxruntime": students exported once, run by an ORT session (tha4bridge.onnx)
    providers: str | None = None  # ORT execution providers tried in order (None: onnx.backend.DEFAULT_PROVIDERS)
    fps: float | None = None  # never render a stream faster than this
    idle_fps: float = IDLE_FPS  # re-render an unchanged pose this often (idle motion keeps going)
    # Seconds per breath for every pose the daemon shows (tracked, idle, control-held); None = the tracker
    # settings' idle.breathing_rate (20/min, the official 3 s); 0 = no breathing.
    breathing_period: float | None = None
    control: str = CONTROL_ENDPOINT
    frames: str = FRAMES_ENDPOINT
    transport: str = "shm"
    alpha: str = "straight"
    stream_alpha: dict[str, str] = field(default_factory=dict)  # per stream name, overrides `alpha`
    region: str | None = None  # "x,y,w,h": every stream shows only this crop (region.py); None = whole frames
    stream_region: dict[str, str] = field(default_factory=dict)  # per stream name, overrides `region`
    slots: int = DEFAULT_SLOTS
    trackers: bool = True
    vmc_port: int = VMC_PORT
    ifm_port: int = IFM_PORT
    ifm_phone: str | None = None
    tracker_host: str = TRACKER_HOST
    mapping_file: str | None = None
    calibration_file: str | None = None  # None: the tracker hub's default (~/.config/tha4bridge/)
    threads: int | None = None  # torch CPU threads; None = every core with a student, half with the demo (daemon.set_threads)
    http: str | None = None  # "[HOST:]PORT" of the web server (tha4bridge/web/); None = off
    http_allow_load: bool = False  # `load` by path over HTTP
    ort_web: str | None = None  # a local onnxruntime-web for the browser-runtime page (web/ortweb.py); None = CDN
    expressions: str | None = None  # a folder of *.toml expressions adding to / overriding the shipped ones
    webcam: WebcamConfig | None = None  # --webcam: built-in face tracking (trackers/webcam.py); None = off

    def check(self) -> None:
        """Refuse a bad option with one sentence (ValueError), before any socket or model."""
        check_backend(self.backend)
        check_transport(self.transport)
        for alpha in (self.alpha, *self.stream_alpha.values()):
            check_alpha(alpha)
        if self.http is not None:
            parse_http(self.http)
        ort_web_dir(self.ort_web)  # a folder without onnxruntime-web: one sentence, before anything starts
        for name in (None, *self.stream_region):
            region = self.region_of(name)  # parsed here: a typo stops start-up in one sentence
            if region is not None:
                region.check(what=self._region_option(name))  # the THA4 frame; Streams.open checks the poser
        if self.webcam is not None:
            if not self.trackers:
                raise ValueError("--webcam is tracker input: it cannot be combined with --no-trackers")
            from ..trackers.webcam import backends

            self.webcam.check()
            backends()  # without the extra: one line saying what to install
        p = self.breathing_period
        if p is not None and not (math.isfinite(p) and p >= 0):
            raise ValueError(f"--breathing-period must be a number of seconds >= 0 (0 = off), got {p!r}")

    def region_of(self, name: str | None) -> Region | None:
        """The crop stream `name` shows (its own --region NAME=..., else the one for all), or None."""
        text = self.stream_region.get(name, self.region) if name is not None else self.region
        return Region.parse(text, self._region_option(name)) if text is not None else None

    def _region_option(self, name: str | None) -> str:
        """The option that gave stream `name` its crop, as refusals name it."""
        return f"--region {name}=" if name in self.stream_region else "--region"

    def breathing_rate(self, default: float) -> float:
        """Breaths per minute for the animator: from --breathing-period when given, else `default`."""
        if self.breathing_period is None:
            return default
        return 60.0 / self.breathing_period if self.breathing_period > 0 else 0.0

"""One breathing clock: tracked, idle and control-held frames of a real daemon breathe at the one configured
rate, in one phase (the animator's), whoever drives the pose."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder

from tha4bridge.client import FrameSubscriber
from tha4bridge.pose import BREATHING

from tests.daemon.util import Served

PERIOD = 2.0  # --breathing-period: not the 3 s default, so the option is seen to reach every source


def vmc(address: str, *args) -> bytes:
    b = OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def collect(sub: FrameSubscriber, source: str, seconds: float) -> list[tuple[float, float]]:
    """(render start, breathing) of the frames of `source` arriving within `seconds`."""
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        f = sub.recv(timeout=0.2)
        if f is not None and f.header["pose_source"] == source:
            out.append((f.header["t_render_start"], f.header["pose"][BREATHING]))
    return out


def fit(samples) -> tuple[float, float]:
    """Least-squares fit of b = 0.5 - A cos(w (t - t0)) at the configured period: (A, worst residual)."""
    t, b = np.array(samples, dtype=np.float64).T
    w = 2.0 * np.pi / PERIOD
    basis = np.stack([np.cos(w * t), np.sin(w * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, b - 0.5, rcond=None)
    return float(np.hypot(*coef)), float(np.abs(basis @ coef - (b - 0.5)).max())


def test_tracked_idle_and_control_held_frames_breathe_on_one_clock(tmp_path):
    d = Served("--idle-fps", "20", "--breathing-period", str(PERIOD), log_dir=tmp_path, trackers=True)
    stop = threading.Event()
    try:
        port = d.hello["trackers"]["vmc"]

        def send():  # a tracker at ~30 Hz (it never sends breathing: trackers cannot)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                while not stop.is_set():
                    for dgram in (vmc("/VMC/Ext/Blend/Val", "A", 0.6), vmc("/VMC/Ext/Blend/Apply")):
                        s.sendto(dgram, ("127.0.0.1", port))
                    time.sleep(0.03)

        with FrameSubscriber(d.frames, streams="demo") as sub:
            idle = collect(sub, "idle", 2.5)
            tracker = threading.Thread(target=send, daemon=True)
            tracker.start()
            tracked = collect(sub, "tracker:vmc", 2.5)
            d.ctl.set_pose("demo", {"mouth_aaa": 0.3}, hold=0)  # a game's pose, silent about breathing
            held = collect(sub, "control", 2.5)
        samples = {"idle": idle, "tracked": tracked, "control-held": held}
        for name, s in samples.items():
            assert len(s) >= 8, f"too few {name} frames: {len(s)}"
            amplitude, worst = fit(s)
            assert abs(amplitude - 0.5) < 0.05 and worst < 0.05, (name, amplitude, worst)
        # and one phase: all three together fit the same single cosine
        amplitude, worst = fit(idle + tracked + held)
        assert abs(amplitude - 0.5) < 0.05 and worst < 0.05, (amplitude, worst)
    finally:
        stop.set()
        d.stop()

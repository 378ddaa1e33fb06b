"""Helpers for the tracker tests: real UDP senders, OSC builders, a hub on ephemeral ports, and the four
iFacialMocap example packets of the gathered protocol facts."""
from __future__ import annotations

import math
import socket
import time

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from tha4bridge.trackers import TrackerConfig, TrackerHub
from tha4bridge.trackers.filters import SmoothingConfig
from tha4bridge.trackers.idle import IdleConfig
from tests.shared import SHARED

# Read at test time, not copied: ../shared/docs/tracker-protocol-facts.md holds four example packets (a
# neutral and a talking face, v1 and v2) with the official converter's output for them, which
# tests/trackers/test_mapping.py checks ours against (protocols/trackers.md, "iFacialMocap", "Golden
# vectors"). Tests that use them skip where ../shared is absent (a fresh clone).
FACTS = SHARED / "docs" / "tracker-protocol-facts.md"


def example_packets() -> dict[str, bytes]:
    """The four iFacialMocap example packets: neutral v1/v2, talking v2/v1."""
    if not FACTS.exists():
        pytest.skip(f"facts doc not found at {FACTS} (the shared folder sits next to the repo)")
    lines = [ln.strip().encode() for ln in FACTS.read_text(encoding="utf-8").splitlines()
             if ln.startswith("eyeLookIn_R")]
    if len(lines) != 4:
        pytest.skip("facts doc does not hold the four example packets")
    return {"neutral_v1": lines[0], "neutral_v2": lines[1], "talking_v2": lines[2], "talking_v1": lines[3]}


def msg(address: str, *args) -> bytes:
    m = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, float):
            m.add_arg(a, "f")
        else:
            m.add_arg(a)
    return m.build().dgram


def bundle(*messages: tuple) -> bytes:
    b = OscBundleBuilder(IMMEDIATELY)
    for address, *args in messages:
        m = OscMessageBuilder(address)
        for a in args:
            m.add_arg(a, "f") if isinstance(a, float) else m.add_arg(a)
        b.add_content(m.build())
    return b.build().dgram


def quat_yaw(deg: float) -> tuple[float, float, float, float]:
    h = math.radians(deg) / 2
    return (0.0, math.sin(h), 0.0, math.cos(h))


def quat_pitch(deg: float) -> tuple[float, float, float, float]:
    h = math.radians(deg) / 2
    return (math.sin(h), 0.0, 0.0, math.cos(h))


def bone(name: str, q) -> tuple:
    return ("/VMC/Ext/Bone/Pos", name, 0.0, 0.0, 0.0, float(q[0]), float(q[1]), float(q[2]), float(q[3]))


def make_hub(tmp_path, **kw) -> TrackerHub:
    """A hub on 127.0.0.1 ephemeral ports, smoothing off, instant ease-in, seeded idle."""
    idle = kw.pop("idle", IdleConfig(ease_in=0.0, seed=7))
    smoothing = kw.pop("smoothing", SmoothingConfig(enabled=False))
    cfg = TrackerConfig(vmc_port=kw.pop("vmc_port", 0), ifm_port=kw.pop("ifm_port", 0),
                        osc_param_port=kw.pop("osc_param_port", 0), host="127.0.0.1",
                        calibration_file=str(tmp_path / "calibration.json"), idle=idle, smoothing=smoothing, **kw)
    return TrackerHub(cfg)


class Sender:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, ("127.0.0.1", port))

    def close(self) -> None:
        self.sock.close()


def settle(hub: TrackerHub, predicate, timeout: float = 10.0):
    """Poll hub.current() until predicate(tracked) holds; return the last TrackedPose. The deadline is generous
    (a busy 2-core machine can starve the receiver threads for a second or more); it costs nothing when it holds."""
    end = time.monotonic() + timeout
    tp = hub.current()
    while not predicate(tp) and time.monotonic() < end:
        time.sleep(0.005)  # polling, so these tests do not depend on how the hub wakes its readers
        tp = hub.current()
    return tp


def wait_for(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True

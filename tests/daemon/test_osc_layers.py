"""The OSC mirrors of the layer commands on a real daemon's tracker socket: /tha4/expression, /tha4/talk,
/tha4/mouth reach every stream through the control command table; bad ones are refused and counted."""
from __future__ import annotations

import socket
import time

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from tests.daemon.util import Served


def osc(address: str, *args) -> bytes:
    b = OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def until(fn, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_osc_expression_talk_and_mouth(tmp_path):
    d = Served(log_dir=tmp_path, trackers=True)
    try:
        port = d.hello["trackers"]["vmc"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            def send(*msg):
                s.sendto(osc(*msg), ("127.0.0.1", port))

            send("/tha4/expression", "joy", 0.5, 0.0)
            p = until(lambda: (lambda p: p if p["layers"]["expression"]["name"] == "joy" else None)(d.ctl.get_pose()))
            assert p["pose"]["mouth_raised_corner_left"] == pytest.approx(0.45, abs=1e-5)  # 0.9 × intensity 0.5
            send("/tha4/mouth", 0.6)
            until(lambda: d.ctl.get_pose()["layers"]["talking"]["mode"] == "level")
            assert d.ctl.get_pose()["pose"]["mouth_aaa"] == pytest.approx(0.6, abs=1e-5)
            send("/tha4/talk", 1)
            time.sleep(1.1)  # the pushed level lapses; procedural talking remains
            assert d.ctl.get_pose()["layers"]["talking"]["mode"] == "talk"
            send("/tha4/talk", 0)
            until(lambda: d.ctl.get_pose()["layers"]["talking"]["mode"] is None)
            # refused by the command table (unknown name, level out of range): counted, nothing applied
            send("/tha4/expression", "nope")
            send("/tha4/mouth", 1.5)
            until(lambda: d.ctl.stats()["control"]["osc_refused"] == 2)
            # malformed for OSC itself (a number where the name goes): dropped by the receiver, counted there
            send("/tha4/expression", 3.0)
            until(lambda: d.ctl.stats()["receivers"]["receivers"]["vmc"]["malformed"].get("wrong_type", 0) >= 1)
            p = d.ctl.get_pose()
            assert p["layers"]["expression"]["name"] == "joy" and p["layers"]["talking"]["mode"] is None
    finally:
        d.stop()

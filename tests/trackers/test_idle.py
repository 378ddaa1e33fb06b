"""Tracking lost -> hold -> idle -> return (the envelope alone and through the hub), frozen-sender detection,
the handshake re-send. The idle motion itself is tested in tests/test_animator.py."""
from __future__ import annotations

import socket
import time

import pytest
from tests.trackers.util import Sender, bundle, example_packets, make_hub, settle, wait_for

from tha4bridge.pose import INDEX
from tha4bridge.trackers.idle import IdleConfig, LostEnvelope
from tha4bridge.trackers.ifacialmocap import START_V1, START_V2

FAST_IDLE = IdleConfig(lost_after=0.25, ease_out=0.25, ease_in=0.0, seed=3, blink_interval_min=0.3,
                       blink_interval_max=0.5)


def test_lost_envelope_is_a_function_of_the_clock():
    """Hold for lost_after, ease to idle over ease_out, ease back over ease_in; asking never changes it."""
    env = LostEnvelope(IdleConfig(lost_after=0.5, ease_out=1.0, ease_in=0.25))
    assert env.weight(10.0, None) == 1.0  # never tracked: idle
    env.started(10.0, None)  # tracking starts at 10 s: from fully idle, eased back over 0.25 s
    assert env.level(10.0, 10.0) == 1.0 and env.level(10.125, 10.125) == pytest.approx(0.5)
    assert env.weight(10.3, 10.3) == 0.0
    # the last fresh data at 12 s: held until 12.5, then half-way to idle at 13.0, fully idle at 13.5
    assert env.weight(12.4, 12.0) == 0.0 and env.level(13.0, 12.0) == pytest.approx(0.5)
    assert env.weight(13.0, 12.0) == pytest.approx(0.5) and env.weight(14.0, 12.0) == 1.0
    assert [env.weight(13.0, 12.0) for _ in range(3)] == [pytest.approx(0.5)] * 3  # reading changes nothing
    env.started(13.0, 12.0)  # back at 13 s from level 0.5: 0.125 s of easing in
    assert env.level(13.0625, 13.0625) == pytest.approx(0.25) and env.weight(13.2, 13.2) == 0.0


def test_tracking_lost_holds_then_idles_then_returns(tmp_path):
    pk = example_packets()
    hub = make_hub(tmp_path, idle=FAST_IDLE)
    s = Sender()
    with hub:
        port = hub.ports["ifacialmocap"]
        t_sent = time.monotonic()  # the hub receives the packet after this
        s.send(pk["talking_v2"], port)
        tp = settle(hub, lambda t: t.source == "ifacialmocap", timeout=5.0)
        held = tp.pose[INDEX["head_x"]]
        assert held == pytest.approx(-0.6292, abs=1e-3) and tp.live
        time.sleep(0.1)  # inside the hold: unchanged
        tp = hub.current()
        if time.monotonic() - t_sent < FAST_IDLE.lost_after:  # else a busy machine stalled us past the hold
            assert tp.source == "ifacialmocap" and tp.pose[INDEX["head_x"]] == pytest.approx(held, abs=1e-3)
        tp = settle(hub, lambda t: t.source == "idle", timeout=5.0)  # lost after 0.25 s
        assert tp.source == "idle" and not tp.live, "tracking never counted as lost"
        tp = settle(hub, lambda t: abs(t.pose[INDEX["head_x"]]) < 0.1, timeout=5.0)  # eased to the idle pose
        assert abs(tp.pose[INDEX["head_x"]]) < 0.1, "never eased to the idle pose"
        assert hub.stats()["live_source"] is None
        s.send(pk["talking_v1"], port)  # tracking returns
        tp = settle(hub, lambda t: t.source == "ifacialmocap", timeout=5.0)
        assert tp.pose[INDEX["head_x"]] == pytest.approx(-0.6292, abs=1e-3)
    s.close()


def test_byte_identical_repeats_count_as_lost(tmp_path):
    """iFacialMocap repeats its last frame when it loses the face: that is not live tracking."""
    pk = example_packets()
    hub = make_hub(tmp_path, idle=FAST_IDLE)
    s = Sender()
    with hub:
        port = hub.ports["ifacialmocap"]
        s.send(pk["talking_v2"], port)
        assert settle(hub, lambda t: t.source == "ifacialmocap", timeout=5.0).source == "ifacialmocap"
        # The same bytes at ~100 Hz for at least 0.6 s and 20 packets, and on until idle takes over while they
        # still arrive (a busy machine may process them late), or 10 s
        start, sent = time.monotonic(), 0
        while (time.monotonic() < start + 0.6 or sent < 20 or hub.current().source != "idle") and \
                time.monotonic() < start + 10.0:
            s.send(pk["talking_v2"], port)
            sent += 1
            time.sleep(0.01)
        tp = hub.current()
        assert tp.source == "idle" and not tp.live, "byte-identical repeats kept the tracker live for 10 s"
        assert wait_for(lambda: hub.stats()["receivers"]["ifacialmocap"]["repeats"] >= sent, timeout=10.0), \
            f"the receiver never counted the {sent} repeats sent"
        st = hub.stats()["receivers"]["ifacialmocap"]
        assert st["repeats"] >= 20 and st["accepted"] == 1 and not st["live"]
    s.close()


def test_vmc_frozen_sender_clock_counts_as_lost(tmp_path):
    hub = make_hub(tmp_path, idle=FAST_IDLE)
    s = Sender()
    frozen = bundle(("/VMC/Ext/T", 12.5), ("/VMC/Ext/Blend/Val", "Blink", 1.0), ("/VMC/Ext/Blend/Apply",))
    with hub:
        for k in range(3):  # a moving clock: live
            s.send(bundle(("/VMC/Ext/T", 10.0 + k), ("/VMC/Ext/Blend/Val", "Blink", 1.0), ("/VMC/Ext/Blend/Apply",)),
                   hub.ports["vmc"])
        assert settle(hub, lambda t: t.source == "vmc", timeout=5.0).live
        start = time.monotonic()  # frozen bundles for at least 0.6 s, and on until idle takes over, or 10 s
        while (time.monotonic() < start + 0.6 or hub.current().source != "idle") and time.monotonic() < start + 10:
            s.send(frozen, hub.ports["vmc"])
            time.sleep(0.01)
        assert hub.current().source == "idle", "a frozen sender clock kept VMC live for 10 s"
    s.close()


def test_vmc_tracking_status_bad_lets_idle_take_over(tmp_path):
    hub = make_hub(tmp_path, idle=FAST_IDLE)
    s = Sender()
    with hub:
        s.send(bundle(("/VMC/Ext/OK", 1, 3, 0, 1), ("/VMC/Ext/Blend/Val", "A", 1.0), ("/VMC/Ext/Blend/Apply",)),
               hub.ports["vmc"])
        assert settle(hub, lambda t: t.source == "vmc", timeout=5.0).pose[INDEX["mouth_aaa"]] == 1.0
        start, k = time.monotonic(), 0  # 40 bundles at least, and on until idle takes over (or 10 s)
        while (k < 40 or hub.current().source != "idle") and time.monotonic() < start + 10:
            s.send(bundle(("/VMC/Ext/OK", 1, 3, 0, 0), ("/VMC/Ext/T", float(k)), ("/VMC/Ext/Blend/Val", "A", 1.0),
                          ("/VMC/Ext/Blend/Apply",)), hub.ports["vmc"])
            k += 1
            time.sleep(0.015)
        assert hub.current().source == "idle", "tracking status bad, yet VMC stayed live for 10 s"
        assert hub.stats()["receivers"]["vmc"]["tracking_ok"] is False
    s.close()


@pytest.mark.parametrize("version,expected", [("v2", START_V2), ("v1", START_V1)])
def test_handshake_is_sent_and_resent_while_silent(tmp_path, version, expected):
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # plays the iPhone
    phone.bind(("127.0.0.1", 0))
    phone.settimeout(10.0)
    # re-sent after 0.5 s of silence: 25 times the 20 ms between the phone's packets below, so a busy machine's
    # scheduling gaps are not taken for silence
    hub = make_hub(tmp_path, ifm_phone=f"127.0.0.1:{phone.getsockname()[1]}", ifm_resend=0.5, ifm_version=version)
    try:
        with hub:
            data, addr = phone.recvfrom(1024)
            assert data == expected
            assert addr[1] == hub.ports["ifacialmocap"]  # sent from the receiving socket
            t0 = time.monotonic()
            data, _ = phone.recvfrom(1024)  # silence -> re-sent
            assert data == expected and time.monotonic() - t0 < 5.0, "re-sent, but 10 times later than asked"
            # The phone starts streaming back to the address it was asked from: no re-sends while data flows.
            pk = example_packets()["talking_v2"]
            alt = pk.replace(b"jawOpen&38", b"jawOpen&39")
            sent = None
            t0 = time.monotonic()
            for k in range(40):
                phone.sendto(pk if k % 2 else alt, addr)
                time.sleep(0.02)
                if sent is None and time.monotonic() - t0 > 0.1:
                    sent = hub.stats()["receivers"]["ifacialmocap"]["handshakes_sent"]
            assert hub.current().source == "ifacialmocap"
            assert hub.stats()["receivers"]["ifacialmocap"]["handshakes_sent"] == sent
            # Silent again (the app was closed): the start string comes back.
            data, _ = phone.recvfrom(1024)
            assert data == expected
    finally:
        phone.close()

"""Issue 15 item 9: a VMC port that once heard ARKit names falls back to VRM presets when only presets come."""
from __future__ import annotations

import time

import pytest

from pythonosc.osc_message import OscMessage

from tests.trackers.util import Sender, bundle, make_hub, msg, settle, wait_for
from tha4bridge.pose import INDEX
from tha4bridge.trackers import vmc_state

FALLBACK = 0.4  # seconds, instead of the 3 s default, to keep the test short


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setattr(vmc_state, "PERFECT_SYNC_FALLBACK", FALLBACK)
    h = make_hub(tmp_path)
    h.start()
    yield h
    h.stop()


def test_switch_from_perfect_sync_to_vrm_presets_falls_back(hub):
    port, sender = hub.ports["vmc"], Sender()
    try:
        perfect = bundle(("/VMC/Ext/Blend/Val", "EyeBlinkLeft", 1.0), ("/VMC/Ext/Blend/Val", "JawOpen", 0.0),
                         ("/VMC/Ext/Blend/Apply",))
        for _ in range(3):  # the first of a layout takes python-osc's path, the next ones the learned template
            t_perfect = time.monotonic()  # the hub hears the last of them after this
            sender.send(perfect, port)
        tp = settle(hub, lambda t: t.source == "vmc" and t.pose[INDEX["eye_wink_left"]] > 0.9)
        assert tp.pose[INDEX["eye_wink_left"]] > 0.9
        assert hub.stats()["receivers"]["vmc"]["perfect_sync"]

        # Another tracker on the same port: VRM presets only (a wide-open A, no blink).
        presets = bundle(("/VMC/Ext/Blend/Val", "A", 1.0), ("/VMC/Ext/Blend/Val", "Blink", 0.0),
                         ("/VMC/Ext/Blend/Apply",))
        packets = hub.stats()["receivers"]["vmc"]["packets"]
        sender.send(presets, port)
        assert wait_for(lambda: hub.stats()["receivers"]["vmc"]["packets"] > packets), "the presets never arrived"
        tp = hub.current()  # (a fixed 0.1 s wait stood here: under load it did not show the presets were taken)
        if time.monotonic() - t_perfect < FALLBACK:  # else a busy machine stalled us past the fallback: no proof
            assert tp.pose[INDEX["mouth_aaa"]] < 0.1  # still perfect sync: the presets wait for the fallback
        end = time.monotonic() + FALLBACK + 10.0
        while time.monotonic() < end and hub.current().pose[INDEX["mouth_aaa"]] < 0.9:
            sender.send(presets, port)
            time.sleep(1 / 60)
        tp = hub.current()
        assert tp.pose[INDEX["mouth_aaa"]] > 0.9 and tp.pose[INDEX["eye_wink_left"]] < 0.1
        assert not hub.stats()["receivers"]["vmc"]["perfect_sync"]

        # And ARKit names coming back take over again, from a clean face (the old blink is not replayed).
        sender.send(bundle(("/VMC/Ext/Blend/Val", "JawOpen", 0.0), ("/VMC/Ext/Blend/Apply",)), port)
        tp = settle(hub, lambda t: t.pose[INDEX["mouth_aaa"]] < 0.1)
        assert tp.pose[INDEX["mouth_aaa"]] < 0.1 and tp.pose[INDEX["eye_wink_left"]] < 0.1
        assert hub.stats()["receivers"]["vmc"]["perfect_sync"]
    finally:
        sender.close()


def test_state_timing_directly(monkeypatch):
    monkeypatch.setattr(vmc_state, "PERFECT_SYNC_FALLBACK", 0.05)
    st = vmc_state.VmcState()
    assert not st.perfect_sync and not st.eye_look
    plan, values = vmc_state.compile_plan([OscMessage(msg("/VMC/Ext/Blend/Val", "eyeLookUpLeft", 0.5)),
                                           OscMessage(msg("/VMC/Ext/Blend/Apply"))])
    assert plan.run(values, st, count=None) and not plan.errors
    assert st.perfect_sync and st.eye_look
    time.sleep(0.1)
    assert not st.perfect_sync and not st.eye_look

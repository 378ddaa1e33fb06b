"""Receivers on real UDP sockets (127.0.0.1, ports from binding 0), driven by python-osc and raw senders."""
from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest
from tests.trackers.util import Sender, bone, bundle, example_packets, make_hub, msg, quat_pitch, quat_yaw, settle, wait_for

from tha4bridge.defaults import IFM_PORT, TRACKER_HOST, VMC_PORT
from tha4bridge.pose import INDEX
from tha4bridge.trackers import TrackerConfig, TrackerHub
from tha4bridge.trackers.mapping import MappingConfig

EYE_L, EYE_R = INDEX["eye_wink_left"], INDEX["eye_wink_right"]


@pytest.fixture
def hub(tmp_path):
    h = make_hub(tmp_path)
    h.start()
    yield h
    h.stop()


@pytest.fixture
def sender():
    s = Sender()
    yield s
    s.close()


def test_perfect_sync_sender(hub, sender):
    """PascalCase perfect-sync clips + Apply in one bundle, head bone in another."""
    port = hub.ports["vmc"]
    sender.send(bundle(("/VMC/Ext/Blend/Val", "EyeBlinkLeft", 1.0), ("/VMC/Ext/Blend/Val", "EyeBlinkRight", 0.0),
                       ("/VMC/Ext/Blend/Val", "JawOpen", 0.55), ("/VMC/Ext/Blend/Apply",)), port)
    tp = settle(hub, lambda t: t.source == "vmc" and t.pose[EYE_L] > 0.9)
    assert tp.live and tp.pose[EYE_L] > 0.9 and tp.pose[EYE_R] == 0.0
    assert tp.pose[INDEX["mouth_aaa"]] > 0.3  # jaw open drives mouth_aaa
    # Values accumulate until Apply: a Val without Apply changes nothing yet.
    sender.send(bundle(("/VMC/Ext/Blend/Val", "EyeBlinkLeft", 0.0)), port)
    sender.send(bundle(bone("Head", quat_yaw(5.0))), port)  # bones apply at once
    tp = settle(hub, lambda t: t.pose[INDEX["head_y"]] > 0.4)
    assert tp.pose[INDEX["head_y"]] == pytest.approx(0.5, abs=1e-3)  # +5 deg yaw / 10 deg
    assert tp.pose[EYE_L] > 0.9
    sender.send(msg("/VMC/Ext/Blend/Apply"), port)
    tp = settle(hub, lambda t: t.pose[EYE_L] < 0.1)
    assert tp.pose[EYE_L] == 0.0
    # Same layout again with new values: served by the template, same meaning.
    for v in (0.25, 0.5, 0.75):
        sender.send(bundle(("/VMC/Ext/Blend/Val", "EyeBlinkLeft", v * 0.8), ("/VMC/Ext/Blend/Val", "EyeBlinkRight", 0.0),
                           ("/VMC/Ext/Blend/Val", "JawOpen", 0.0), ("/VMC/Ext/Blend/Apply",)), port)
        tp = settle(hub, lambda t: abs(t.pose[EYE_L] - v) < 1e-3)
        assert tp.pose[EYE_L] == pytest.approx(v, abs=1e-3)
    st = hub.stats()["receivers"]["vmc"]
    assert st["templates"] >= 1 and st["perfect_sync"] and st["dropped"] == 0


def test_vrm_preset_sender_case_insensitive(hub, sender):
    port = hub.ports["vmc"]
    sender.send(bundle(("/VMC/Ext/Blend/Val", "BLINK_L", 1.0), ("/VMC/Ext/Blend/Val", "A", 0.7),
                       ("/VMC/Ext/Blend/Val", "Joy", 0.0), ("/VMC/Ext/Blend/Val", "lookUp", 1.0),
                       ("/VMC/Ext/Blend/Val", "MyCustomClip", 1.0), ("/VMC/Ext/Blend/Apply",)), port)
    tp = settle(hub, lambda t: t.pose[EYE_L] > 0.9)
    assert tp.pose[EYE_L] == 1.0 and tp.pose[EYE_R] == 0.0
    assert tp.pose[INDEX["mouth_aaa"]] == pytest.approx(0.7)
    assert tp.pose[INDEX["iris_rotation_x"]] == pytest.approx(1.0)
    sender.send(bundle(("/VMC/Ext/Blend/Val", "happy", 1.0), ("/VMC/Ext/Blend/Apply",)), port)  # VRM 1.0 name
    tp = settle(hub, lambda t: t.pose[INDEX["eye_happy_wink_left"]] > 0.9)
    assert tp.pose[INDEX["mouth_raised_corner_right"]] == 1.0


def test_bone_only_sender_head_neck_and_eyes(hub, sender):
    port = hub.ports["vmc"]
    # Neck 3 deg + Head 4 deg of yaw compose to 7 deg; eyes pitched down 6 deg.
    sender.send(bundle(bone("Hips", (0, 0, 0, 1)), bone("Neck", quat_yaw(3.0)), bone("Head", quat_yaw(4.0)),
                       bone("LeftEye", quat_pitch(6.0)), bone("RightEye", quat_pitch(6.0)),
                       ("/VMC/Ext/Root/Pos", "root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0), ("/VMC/Ext/T", 1.5),
                       ("/VMC/Ext/OK", 1)), port)
    tp = settle(hub, lambda t: t.source == "vmc")
    assert tp.pose[INDEX["head_y"]] == pytest.approx(0.7, abs=1e-3)
    assert tp.pose[INDEX["iris_rotation_x"]] == pytest.approx(-0.5, abs=1e-3)  # Unity +pitch looks down
    assert tp.pose[INDEX["head_x"]] == pytest.approx(0.0, abs=1e-6)
    sender.send(bundle(bone("Head", quat_pitch(7.5))), port)  # chin down 7.5 deg -> head_x -0.5
    tp = settle(hub, lambda t: t.pose[INDEX["head_x"]] < -0.4)
    assert tp.pose[INDEX["head_x"]] == pytest.approx(-0.5, abs=1e-3)


def test_head_yaw_sign_is_configurable(tmp_path, sender):
    h = make_hub(tmp_path, mapping=MappingConfig(head_sign_y=-1.0))
    with h:
        sender.send(bundle(bone("Head", quat_yaw(5.0))), h.ports["vmc"])
        tp = settle(h, lambda t: t.source == "vmc")
        assert tp.pose[INDEX["head_y"]] == pytest.approx(-0.5, abs=1e-3)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_ifacialmocap_examples(hub, sender, version):
    pk = example_packets()
    sender.send(pk[f"talking_{version}"], hub.ports["ifacialmocap"])
    tp = settle(hub, lambda t: t.source == "ifacialmocap")
    assert tp.source == "ifacialmocap" and tp.live
    assert tp.pose[EYE_L] == pytest.approx(0.675, abs=1e-3)  # the left blink drives the left eye
    assert tp.pose[INDEX["head_x"]] == pytest.approx(-0.6292, abs=1e-3)
    assert tp.pose[INDEX["head_y"]] == pytest.approx(0.6208, abs=1e-3)
    mouth = tp.pose[INDEX["mouth_aaa"]] + tp.pose[INDEX["mouth_eee"]] + tp.pose[INDEX["mouth_iii"]]
    assert mouth > 0.3  # jaw open 0.38
    assert 0.0 <= tp.pose[INDEX["breathing"]] <= 1.0


def test_calibration_centres_the_head(hub, sender, tmp_path):
    pk = example_packets()
    sender.send(pk["neutral_v2"], hub.ports["ifacialmocap"])
    tp = settle(hub, lambda t: t.source == "ifacialmocap")
    assert tp.pose[INDEX["head_y"]] == pytest.approx(-0.3092, abs=1e-3)  # 3.09 deg of resting yaw
    doc = hub.calibrate()
    assert doc["sources"]["ifacialmocap"]["head_deg"][1] == pytest.approx(3.0921345)
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert "ifacialmocap" in saved["sources"]
    sender.send(pk["neutral_v1"], hub.ports["ifacialmocap"])  # same face, new datagram
    tp = settle(hub, lambda t: abs(t.pose[INDEX["head_y"]]) < 1e-3)
    for name in ("head_x", "head_y", "neck_z", "eye_wink_left", "eyebrow_raised_left", "iris_rotation_x"):
        assert tp.pose[INDEX[name]] == pytest.approx(0.0, abs=1e-3), name
    assert hub.stats()["calibrated"] == ["ifacialmocap"]
    # A new hub loads the stored calibration.
    h2 = make_hub(tmp_path)
    assert h2.calibration.get("ifacialmocap") is not None
    hub.clear_calibration()
    assert not (tmp_path / "calibration.json").exists()


def test_calibrate_without_data_is_a_clear_error(hub):
    with pytest.raises(RuntimeError, match="no tracker"):
        hub.calibrate()


def test_direct_parameter_overlay(hub, sender):
    port = hub.ports["osc-params"]
    assert port == hub.ports["vmc"]  # shares the VMC socket by default in make_hub (both 0 -> one socket)
    sender.send(bundle(("/tha4/param/mouth_ooo", 0.7), ("/tha4/params", "eyebrow_angry_left", 0.4, "head_x", -2.0)),
                port)
    tp = settle(hub, lambda t: t.source == "osc-params")
    assert tp.pose[INDEX["mouth_ooo"]] == pytest.approx(0.7)
    assert tp.pose[INDEX["eyebrow_angry_left"]] == pytest.approx(0.4)
    assert tp.pose[INDEX["head_x"]] == -1.0  # clamped
    assert tp.live
    sender.send(msg("/tha4/pose", *([0.5] * 45)), port)
    tp = settle(hub, lambda t: t.pose[INDEX["eye_wink_left"]] == 0.5)
    assert np.allclose(tp.pose, 0.5)
    sender.send(msg("/tha4/release"), port)
    tp = settle(hub, lambda t: t.source == "idle")
    assert tp.source == "idle" and not tp.live
    sender.send(msg("/tha4/param/not_a_param", 1.0), port)
    assert wait_for(lambda: hub.stats()["receivers"]["vmc"]["malformed"].get("unknown_parameter") == 1)


def test_separate_parameter_socket(tmp_path, sender):
    h = make_hub(tmp_path, vmc_port=None, ifm_port=None, osc_param_port=0)
    with h:
        assert set(h.ports) == {"osc-params"}
        sender.send(msg("/tha4/param", "mouth_iii", 1.0), h.ports["osc-params"])
        tp = settle(h, lambda t: t.pose[INDEX["mouth_iii"]] == 1.0)
        assert tp.source == "osc-params"


def test_policies(tmp_path, sender):
    pk = example_packets()
    for policy, expected in (("last-active", "ifacialmocap"), ("priority", "vmc")):
        h = make_hub(tmp_path, policy=policy, priority=("vmc", "ifacialmocap"))
        with h:
            sender.send(bundle(("/VMC/Ext/Blend/Val", "Blink", 1.0), ("/VMC/Ext/Blend/Apply",)), h.ports["vmc"])
            settle(h, lambda t: t.source == "vmc")
            sender.send(pk["talking_v2"], h.ports["ifacialmocap"])
            assert wait_for(lambda: h.stats()["receivers"]["ifacialmocap"]["accepted"] == 1)
            tp = h.current()
            assert tp.source == expected, policy
            assert h.stats()["live_source"] == expected
    h = make_hub(tmp_path, policy="per-stream", streams={"mouth": "vmc"})
    with h:
        sender.send(bundle(("/VMC/Ext/Blend/Val", "O", 1.0), ("/VMC/Ext/Blend/Apply",)), h.ports["vmc"])
        settle(h, lambda t: t.source == "vmc")
        sender.send(pk["talking_v2"], h.ports["ifacialmocap"])
        tp = settle(h, lambda t: t.source == "ifacialmocap")
        assert tp.pose[INDEX["mouth_ooo"]] == 1.0 and tp.pose[INDEX["mouth_aaa"]] == 0.0  # mouth from VMC
        assert tp.pose[EYE_L] == pytest.approx(0.675, abs=1e-3)  # eyes from iFacialMocap


def test_port_taken_is_one_line_error(tmp_path):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))
    try:
        h = make_hub(tmp_path, vmc_port=blocker.getsockname()[1])
        with pytest.raises(OSError) as e:
            h.start()
        text = str(e.value)
        assert "vmc" in text and str(blocker.getsockname()[1]) in text and "\n" not in text
        assert h.receivers == {}
    finally:
        blocker.close()


def test_stop_is_fast_and_idle_pose_is_alive(hub):
    tp = hub.current()
    assert tp.source == "idle" and not tp.live and tp.pose.dtype == np.float32 and tp.pose.shape == (45,)
    t = time.monotonic()
    assert hub.wait(0.05) is False
    assert time.monotonic() - t >= 0.04
    threads = [r._thread for r in hub.receivers.values()]
    t = time.monotonic()
    hub.stop()
    # every receiver thread saw the stop flag and ended (the event), within a bound a busy 2-core machine keeps
    # (unloaded it takes about one RECV_TIMEOUT, 0.1 s; 0.5 s was missed under load)
    assert not [th.name for th in threads if th.is_alive()], "a receiver thread outlived stop()"
    assert time.monotonic() - t < 3.0


def test_default_config_works_without_file():
    cfg = TrackerConfig()
    assert (cfg.vmc_port, cfg.ifm_port, cfg.host) == (VMC_PORT, IFM_PORT, TRACKER_HOST)
    assert (VMC_PORT, IFM_PORT) == (39539, 49983)  # where senders send by default (protocols/trackers.md)
    h = TrackerHub(TrackerConfig(vmc_port=None, ifm_port=None, osc_param_port=None, calibration_file="/nonexistent/x.json"))
    h.start()
    assert h.ports == {} and h.current().source == "idle"
    h.stop()


def test_sender_without_apply_and_frame_split_over_datagrams(hub, sender):
    port = hub.ports["vmc"]
    # No Apply ever: each datagram's values are committed at its end.
    sender.send(msg("/VMC/Ext/Blend/Val", "Blink_R", 1.0), port)
    tp = settle(hub, lambda t: t.pose[EYE_R] == 1.0)
    assert tp.pose[EYE_R] == 1.0
    sender.send(msg("/VMC/Ext/Blend/Val", "Blink_R", 0.5), port)
    assert settle(hub, lambda t: t.pose[EYE_R] == 0.5).pose[EYE_R] == 0.5
    # Once the sender uses Apply, a frame split over two datagrams lands atomically.
    sender.send(bundle(("/VMC/Ext/Blend/Val", "Blink_R", 0.0), ("/VMC/Ext/Blend/Apply",)), port)
    settle(hub, lambda t: t.pose[EYE_R] == 0.0)
    before = hub.stats()["receivers"]["vmc"]["packets"]
    sender.send(bundle(("/VMC/Ext/Blend/Val", "Blink_L", 1.0)), port)
    sender.send(bundle(("/VMC/Ext/Blend/Val", "Blink_R", 1.0)), port)
    assert wait_for(lambda: hub.stats()["receivers"]["vmc"]["packets"] >= before + 2), \
        "the receiver never took the two datagrams"  # (a fixed 0.1 s sleep stood here: under load it proved nothing)
    tp = hub.current()
    assert tp.pose[EYE_L] == 0.0 and tp.pose[EYE_R] == 0.0  # not applied yet
    sender.send(msg("/VMC/Ext/Blend/Apply"), port)
    tp = settle(hub, lambda t: t.pose[EYE_L] == 1.0)
    assert tp.pose[EYE_L] == 1.0 and tp.pose[EYE_R] == 1.0


def test_malformed_input_is_counted_not_fatal(hub, sender, caplog):
    caplog.set_level("DEBUG")
    port = hub.ports["vmc"]
    bad = [
        b"hello",  # not OSC
        b"#bundle\x00" + b"\x00" * 7 + b"\x01" + b"\xff\xff\xff\xfc",  # negative element size
        msg("/VMC/Ext/Blend/Val", "Joy"),  # too few arguments
        msg("/VMC/Ext/Blend/Val", 3, 0.5),  # wrong type
        msg("/VMC/Ext/Blend/Val", "Joy", float("nan")),
        msg("/VMC/Ext/Bone/Pos", "Head", 0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0),  # absurd quaternion
        msg("/Unknown/Address", 1),
        b"/VMC/Ext/T\x00\x00,x\x00\x00\x00\x00\x00\x00",  # a type tag python-osc does not know
        b"\x00" * 40000,  # oversize
    ]
    for d in bad:
        sender.send(d, port)
    sender.send(b"\xff\xfegarbage|||&&&", hub.ports["ifacialmocap"])
    assert wait_for(lambda: hub.stats()["receivers"]["vmc"]["packets"] == len(bad))
    st = hub.stats()["receivers"]
    m = st["vmc"]["malformed"]
    for reason in ("not_osc", "truncated_bundle", "too_few_args", "wrong_type", "non_finite", "absurd_value",
                   "unknown_address", "oversize"):
        assert m.get(reason, 0) >= 1, (reason, m)
    assert wait_for(lambda: hub.stats()["receivers"]["ifacialmocap"]["dropped"] == 1)
    sender.send(bundle(("/VMC/Ext/Blend/Val", "Blink", 1.0), ("/VMC/Ext/Blend/Apply",)), port)
    assert settle(hub, lambda t: t.source == "vmc").pose[EYE_L] == 1.0
    for d in bad:  # the same again: counted, not logged again
        sender.send(d, port)
    assert wait_for(lambda: hub.stats()["receivers"]["vmc"]["packets"] == 2 * len(bad) + 1)
    assert not [r for r in caplog.records if "pythonosc" in r.pathname]  # python-osc's per-packet warnings
    ours = [r for r in caplog.records if r.name == "tha4bridge.trackers"]
    lines = [r.getMessage() for r in ours]
    assert ours and len(lines) == len(set(lines))  # one line per reason, not per packet
    assert all("\n" not in x for x in lines) and all(r.exc_info is None for r in ours)  # no stack traces


def test_custom_clips_only_bundle_is_harmless(hub, sender):
    port = hub.ports["vmc"]
    for v in (0.1, 0.2, 0.3):  # the second and third go through the learned template
        sender.send(bundle(("/VMC/Ext/Blend/Val", "MyClip", v), ("/VMC/Ext/Blend/Val", "Other", v),
                           ("/VMC/Ext/Blend/Apply",)), port)
    sender.send(bundle(("/VMC/Ext/Blend/Val", "Blink", 1.0), ("/VMC/Ext/Blend/Apply",)), port)
    assert settle(hub, lambda t: t.pose[EYE_L] == 1.0).pose[EYE_L] == 1.0
    assert hub.stats()["receivers"]["vmc"]["dropped"] == 0


def test_half_face_switched_off_is_reported(hub, sender):
    # Only the mouth moves (the phone's upper-face capture is off): every eye/brow value is 0.
    sender.send(b"jawOpen&40|mouthSmile_L&20|eyeBlink_L&0|browInnerUp&0|=head#1,2,3,0,0,0|", hub.ports["ifacialmocap"])
    assert wait_for(lambda: hub.stats()["receivers"]["ifacialmocap"]["accepted"] == 1)
    warnings = hub.stats()["receivers"]["ifacialmocap"]["warnings"]
    assert len(warnings) == 1 and "upper-face" in warnings[0]
    sender.send(example_packets()["talking_v2"], hub.ports["ifacialmocap"])
    assert wait_for(lambda: hub.stats()["receivers"]["ifacialmocap"]["accepted"] == 2)
    assert hub.stats()["receivers"]["ifacialmocap"]["warnings"] == []

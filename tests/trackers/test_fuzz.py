"""Bad input never kills a receiver: property tests over random and mutated datagrams, and a socket stress test."""
from __future__ import annotations

import random
import struct
import time

import numpy as np
from tests.trackers.util import Sender, bone, bundle, example_packets, make_hub, msg, quat_yaw, settle, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tha4bridge.pose import INDEX, LOWER, UPPER
from tha4bridge.trackers.calibration import CalibrationStore
from tha4bridge.trackers.filters import SmoothingConfig
from tha4bridge.trackers.idle import IdleConfig
from tha4bridge.trackers.ifacialmocap import IfmFrame
from tha4bridge.trackers.mapping import MappingConfig
from tha4bridge.trackers.osc_params import OscParamReceiver, OscParamState
from tha4bridge.trackers.pipeline import SourcePipeline
from tha4bridge.trackers.udp import Malformed
from tha4bridge.trackers.vmc import VmcReceiver

VMC_SAMPLES = [
    bundle(("/VMC/Ext/Blend/Val", "EyeBlinkLeft", 0.5), ("/VMC/Ext/Blend/Val", "JawOpen", 0.3),
           ("/VMC/Ext/Blend/Val", "Joy", 1.0), ("/VMC/Ext/Blend/Apply",)),
    bundle(bone("Head", quat_yaw(4.0)), bone("Neck", quat_yaw(2.0)), ("/VMC/Ext/T", 3.0), ("/VMC/Ext/OK", 1, 3, 0, 1)),
    msg("/VMC/Ext/Blend/Val", "A", 0.25),
    msg("/tha4/params", "mouth_aaa", 0.5, "head_x", 0.1),
    bundle(("/tha4/pose", *([0.1] * 45))),
]
NASTY = [b"nan", b"inf", b"-inf", b"1e309", b"99999999999", b"-", b"&", b"|", b"#", b",", b"\x00", b"\xff\xfe",
         b"=head#", b"=head#1,2,3", b"leftEye#", b"1_0", b"\xe3\x81\x82"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and b:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:  # truncate
            del b[rng.randrange(len(b)):]
        elif op == 2:  # insert something nasty
            i = rng.randint(0, len(b))
            b[i:i] = rng.choice(NASTY)
        elif op == 3 and len(b) >= 20:  # a bundle element size (or any word) set to something hostile
            i = rng.randrange(0, len(b) - 4) & ~3
            b[i:i + 4] = struct.pack(">i", rng.choice([-4, -1, 0, 3, 0x7FFFFFFF, len(b), 1 << 20]))
        elif op == 4 and b:  # duplicate a slice (glued datagrams)
            i, j = sorted((rng.randrange(len(b)), rng.randrange(len(b))))
            b[j:j] = b[i:j]
        elif op == 5 and len(b) >= 8:  # a float word becomes NaN/inf/huge
            i = rng.randrange(0, len(b) - 4) & ~3
            b[i:i + 4] = struct.pack(">f", rng.choice([float("nan"), float("inf"), 1e30, -1e30]))
        else:  # random garbage
            b = bytearray(rng.randbytes(rng.randint(0, 64)))
    return bytes(b)


def _vmc_receiver():
    published = []
    cal = CalibrationStore("/nonexistent/calibration.json")
    pipe = SourcePipeline("vmc", MappingConfig(), SmoothingConfig(), cal)
    r = VmcReceiver("127.0.0.1", 0, pipe, lambda name, pose, t, fresh: published.append(pose),
                    params=OscParamState(), publish_overlay=lambda v, m, t: published.append(v))
    return r, published


def _check_pose(p) -> None:
    assert p.shape == (45,) and np.isfinite(p).all()
    assert (p >= LOWER).all() and (p <= UPPER).all()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_ifacialmocap_parser_random_bytes(data):
    f = IfmFrame()
    try:
        f.parse(data)
    except Malformed:
        pass
    assert all(np.isfinite(f.blend)) and max(abs(v) for v in f.blend) <= 10.0
    assert all(np.isfinite(f.head)) and max(abs(v) for v in f.head) <= 180.0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from(["neutral_v1", "neutral_v2", "talking_v1", "talking_v2"]))
def test_ifacialmocap_parser_mutated_examples(seed, key):
    rng = random.Random(seed)
    packet = example_packets()[key]
    f = IfmFrame()
    f.parse(packet)  # learn the template so the fast path sees the mutations too
    try:
        f.parse(mutate(rng, packet))
    except Malformed:
        pass
    assert all(np.isfinite(f.blend)) and max(abs(v) for v in f.blend) <= 10.0
    assert all(np.isfinite(f.head)) and max(abs(v) for v in f.head) <= 180.0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(0, len(VMC_SAMPLES) - 1))
def test_vmc_receiver_mutated_datagrams(seed, which):
    rng = random.Random(seed)
    r, published = _vmc_receiver()
    r.handle(VMC_SAMPLES[which], None, 1.0)  # learn the template
    for k in range(3):
        try:
            r.handle(mutate(rng, VMC_SAMPLES[which]), None, 2.0 + k)
        except Malformed:
            pass
    for p in published:
        _check_pose(np.asarray(p))
    r.handle(VMC_SAMPLES[0], None, 9.0)  # still works afterwards


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_vmc_receiver_random_bytes(data):
    r, published = _vmc_receiver()
    try:
        r.handle(data, None, 1.0)
    except Malformed:
        pass
    for p in published:
        _check_pose(np.asarray(p))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["mouth_aaa", "head_x", "nope", 3, None]),
                          st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=3))),
                max_size=4))
def test_param_overlay_wrong_types(pairs):
    st_ = OscParamState()
    got = []
    r = OscParamReceiver("127.0.0.1", 0, st_, lambda v, m, t: got.append(v.copy()))
    args = [a for pair in pairs for a in pair if a is not None]
    try:
        data = msg("/tha4/params", *args)
    except Exception:
        return  # python-osc cannot even build it
    r.handle(data, None, 1.0)
    for v in got:
        assert np.isfinite(v).all() and (v >= LOWER).all() and (v <= UPPER).all()


def test_stress_100k_mutated_datagrams_receiver_still_answers(tmp_path):
    pk = example_packets()
    rng = random.Random(1234)
    ifm_pool = [mutate(rng, pk[rng.choice(list(pk))]) for _ in range(500)]
    vmc_pool = [mutate(rng, rng.choice(VMC_SAMPLES)) for _ in range(500)]
    oversize = b"/VMC/Ext/T\x00\x00,f\x00\x00" + b"\x00" * 40000
    hub = make_hub(tmp_path, idle=IdleConfig(lost_after=0.2, ease_in=0.0, seed=1))
    s = Sender()
    with hub:
        vmc, ifm = hub.ports["vmc"], hub.ports["ifacialmocap"]
        t0 = time.monotonic()
        recv = hub.receivers
        for k in range(50_000):
            s.send(ifm_pool[k % 500], ifm)
            s.send(vmc_pool[k % 500] if k % 1000 else oversize, vmc)
            if k % 200 == 199:  # pace to the receivers, so they parse all 100k rather than the kernel dropping them
                while (k - recv["ifacialmocap"].packets > 400 or k - recv["vmc"].packets > 400) and \
                        time.monotonic() - t0 < 60:
                    time.sleep(0.001)
        sent_for = time.monotonic() - t0

        def drained():
            a = hub.stats()["receivers"]
            time.sleep(0.2)
            b = hub.stats()["receivers"]
            return a["vmc"]["packets"] == b["vmc"]["packets"] and a["ifacialmocap"]["packets"] == b["ifacialmocap"]["packets"]

        assert wait_for(drained, timeout=30.0)
        stats = hub.stats()["receivers"]
        assert stats["vmc"]["packets"] > 45_000 and stats["ifacialmocap"]["packets"] > 45_000
        assert stats["vmc"]["dropped"] > 0 and stats["ifacialmocap"]["dropped"] > 0
        assert not any(k.startswith("internal") for r in stats.values() for k in r["malformed"]), stats
        # Still answering: a valid frame on each port shows up (after releasing any /tha4/ overlay the
        # mutated parameter messages may have set).
        s.send(msg("/tha4/release"), vmc)
        time.sleep(0.25)  # every source lost, so the next one to deliver drives
        s.send(bundle(("/VMC/Ext/Blend/Val", "EyeBlinkRight", 1.0), ("/VMC/Ext/Blend/Val", "EyeBlinkLeft", 0.0),
                      ("/VMC/Ext/Blend/Apply",)), vmc)
        tp = settle(hub, lambda t: t.source == "vmc" and t.pose[INDEX["eye_wink_right"]] > 0.9, timeout=10.0)
        assert tp.pose[INDEX["eye_wink_right"]] > 0.9
        time.sleep(0.25)
        s.send(pk["talking_v2"], ifm)
        tp = settle(hub, lambda t: t.source == "ifacialmocap" and abs(t.pose[INDEX["head_x"]] + 0.6292) < 1e-3,
                    timeout=10.0)
        assert tp.source == "ifacialmocap"
        _check_pose(tp.pose)
    s.close()
    print(f"sent 100k datagrams in {sent_for:.2f}s; stats {stats['vmc']['malformed']} {stats['ifacialmocap']['malformed']}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(-0.5, 1.5, width=32), min_size=6, max_size=6), st.floats(-60, 60), st.floats(-60, 60))
def test_vmc_template_path_equals_python_osc_path(values, yaw, pitch):
    """A datagram served by the learned template means exactly what python-osc's full parse says it means."""
    def frame(v, y, p):
        return bundle(("/VMC/Ext/T", 1.0), ("/VMC/Ext/Blend/Val", "EyeBlinkLeft", v[0]), ("/VMC/Ext/Blend/Val", "jawOpen", v[1]),
                      ("/VMC/Ext/Blend/Val", "mouthSmile_L", v[2]), ("/VMC/Ext/Blend/Val", "A", v[3]),
                      ("/VMC/Ext/Blend/Val", "eyeLookUpLeft", v[4]), ("/VMC/Ext/Blend/Val", "Custom", v[5]),
                      ("/VMC/Ext/Blend/Apply",), bone("Head", quat_yaw(y)), bone("Neck", quat_yaw(p)))
    learned, _ = _vmc_receiver()
    learned.handle(frame([0.1] * 6, 0.0, 0.0), None, 1.0)
    assert any(p is not None for p in learned._plans.values())
    fresh, _ = _vmc_receiver()
    data = frame(values, yaw, pitch)
    learned.handle(data, None, 2.0)  # template
    fresh.handle(data, None, 2.0)  # python-osc
    assert np.array_equal(np.asarray(learned.state.arkit), np.asarray(fresh.state.arkit))
    assert np.array_equal(learned.state.vrm, fresh.state.vrm)
    for k in fresh.state.bones:
        assert np.allclose(learned.state.bones[k], fresh.state.bones[k], atol=1e-12)
    assert learned.state.eye_look == fresh.state.eye_look and learned.state.perfect_sync == fresh.state.perfect_sync

"""The VMC rules run once per datagram, whichever way its numbers were read: a receiver that keeps each layout's
plan (vmc_state.Plan.bind) hands the hub exactly what a receiver that parses every datagram with python-osc
hands it, and counts the same drops, for valid frames, bad values in learned layouts and mutated datagrams."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from tests.trackers.test_fuzz import mutate
from tests.trackers.util import bone, bundle, msg, quat_pitch, quat_yaw
from tha4bridge.trackers import vmc
from tha4bridge.trackers.calibration import CalibrationStore
from tha4bridge.trackers.filters import SmoothingConfig
from tha4bridge.trackers.mapping import MappingConfig
from tha4bridge.trackers.names import ARKIT_INDEX
from tha4bridge.trackers.osc_params import OscParamState
from tha4bridge.trackers.pipeline import SourcePipeline
from tha4bridge.trackers.udp import Malformed

V, APPLY, T, OK = "/VMC/Ext/Blend/Val", ("/VMC/Ext/Blend/Apply",), "/VMC/Ext/T", "/VMC/Ext/OK"
ROOT = "/VMC/Ext/Root/Pos"
NAN, INF = float("nan"), float("inf")


def _nest(*elements: bytes) -> bytes:
    out = b"#bundle\x00" + struct.pack(">Q", 1)
    for e in elements:
        out += struct.pack(">i", len(e)) + e
    return out


def _face(vals, names=("EyeBlinkLeft", "JawOpen", "Joy", "eyeLookUpLeft", "Custom", "A")):
    return [(V, n, float(v)) for n, v in zip(names, vals)]


def _root(*v):
    return (ROOT, "root", *map(float, v))


SEQUENCES = {
    "perfect_sync": [bundle(*_face([0.1 * k, 0.2, 0.3, 0.05 * k, 0.4, 0.5]), APPLY) for k in range(4)],
    "bad_blend_values": [bundle(*_face(v), APPLY) for v in ([0.2] * 6, [0.3] * 6, [NAN, .3, .4, .1, .2, .3],
                                                            [.2, 30.0, .4, .1, .2, .3], [.2, .3, .4, .1, INF, .3])],
    "bones": [bundle(bone("Hips", (0, 0, 0, 1)), bone("Neck", quat_yaw(k)), bone("Head", quat_pitch(2 * k)),
                     bone("LeftEye", quat_pitch(k)), bone("Toe", quat_yaw(3)), _root(0, 1, 0, 0, 0, 0, 1),
                     (T, 1.0 + k), (OK, 1)) for k in range(3)],
    "bad_bone_values": [bundle(bone("Head", q), bone("Neck", quat_yaw(1)), _root(0, 0, p, 0, 0, 0, 1), (T, 2.0))
                        for q, p in ((quat_yaw(1), 0), (quat_yaw(2), 0), ((NAN, 0, 0, 1), 0), ((9, 9, 9, 9), 0),
                                     (quat_yaw(3), NAN), (quat_yaw(4), 1e5), (quat_yaw(5), 0))],
    "no_apply_then_apply": [msg(V, "Blink_R", 1.0), msg(V, "Blink_R", 0.5), bundle((V, "Blink_R", 0.0), APPLY),
                            bundle((V, "Blink_L", 1.0)), bundle((V, "Blink_L", 0.7)), msg(APPLY[0])],
    "value_after_apply": [bundle((V, "A", 0.1 * k), APPLY, (V, "I", 0.7)) for k in range(3)] + [bundle(APPLY)],
    "bone_twice_and_dup_names": [bundle(bone("Head", quat_yaw(3)), bone("Head", quat_yaw(k)),
                                        (V, "EyeBlinkLeft", 0.2 * k), (V, "eyeBlink_L", 0.1), APPLY) for k in range(3)],
    "tracking": [bundle((V, "JawOpen", 0.1 * k), APPLY, (OK, 1, 3, 0, k % 2)) for k in range(4)]
    + [bundle((V, "JawOpen", 0.5), APPLY, (OK, 1.0))] * 2,
    "frozen": [bundle((T, 5.0), (V, "JawOpen", 0.5), APPLY)] * 3 + [bundle((V, "JawOpen", 0.5), APPLY)] * 2,
    "ignored_unknown_structural": [bundle(("/VMC/Ext/Cam", "c", 0.0, 1.0), (V, "A", 0.5), APPLY, ("/VMC/Thru/x", 1),
                                          ("/Unknown", 0.5), (V, "Joy"), (V, 3, 0.5), (OK, 1, 2, 3, "x"), (T, "s"),
                                          ("/VMC/Ext/Bone/Pos", "Head", 0.0))] * 3,
    "overlay_on_the_vmc_socket": [bundle(("/tha4/param/mouth_ooo", 0.7), (V, "A", 0.5 + 0.1 * k), APPLY,
                                         ("/tha4/param/nope", 1.0)) for k in range(3)],
    "too_many_blends": [bundle(*[(V, "JawOpen", 0.1 * k)] * 1500) for k in range(3)] + [msg(APPLY[0])],
    "nested": [_nest(msg(V, "A", 0.1 * k), _nest(msg(V, "I", 0.2), _nest(msg(APPLY[0])))) for k in range(3)],
}


def _receiver(cache: bool):
    out = []
    pipe = SourcePipeline("vmc", MappingConfig(), SmoothingConfig(), CalibrationStore("/nonexistent/c.json"))
    r = vmc.VmcReceiver("127.0.0.1", 0, pipe, lambda n, p, t, fresh: out.append(("pose", p.tobytes(), t, fresh)),
                        params=OscParamState(), publish_overlay=lambda v, m, t: out.append(("overlay", v.tobytes())))
    if not cache:
        r._plans = _NeverKept()
    return r, out


class _NeverKept(dict):
    """A plan store that keeps nothing: every datagram takes python-osc's path."""

    def __setitem__(self, key, value):
        super().__setitem__(key, None)


def _feed(r, out, seq) -> list:
    steps = []
    for k, data in enumerate(seq):
        out.clear()
        try:
            r.handle(data, None, 1.0 + k / 60)
        except Malformed as m:
            r._count(m.args[0])
        st = r.state
        steps.append((list(out), dict(r.malformed), r.accepted, r.repeats, r.messages, st.ignored, st.tracking_ok,
                      st.arkit.tobytes(), st.vrm.tobytes(), sorted(st.bones.items()), st.pending_count))
    return steps


@pytest.mark.parametrize("key", sorted(SEQUENCES))
def test_kept_plan_equals_the_general_path(key):
    kept, out_kept = _receiver(True)
    general, out_general = _receiver(False)
    a, b = _feed(kept, out_kept, SEQUENCES[key]), _feed(general, out_general, SEQUENCES[key])
    assert a == b
    if key not in ("overlay_on_the_vmc_socket",):  # /tha4/ messages take python-osc's path every time
        assert kept.stats()["templates"] >= 1 and general.stats()["templates"] == 0


def test_kept_plan_equals_the_general_path_on_mutated_datagrams():
    rng = random.Random(20261204)
    pool = [seq[0] for key, seq in SEQUENCES.items() if key != "too_many_blends"]
    for _ in range(150):
        base = rng.choice(pool)
        seq = [base] + [mutate(rng, base) for _ in range(3)] + [base]
        kept, out_kept = _receiver(True)
        general, out_general = _receiver(False)
        assert _feed(kept, out_kept, seq) == _feed(general, out_general, seq), seq


def test_an_int_argument_is_part_of_the_layout():
    """Ints are kept in the plan (the layout says they can not change); floats are read from their words."""
    kept, out = _receiver(True)
    for v in (0.25, 0.5):
        kept.handle(bundle((V, "JawOpen", 1), (V, "A", v), APPLY), None, v)
    assert kept.stats()["templates"] == 1
    assert kept.state.arkit[ARKIT_INDEX["jawOpen"]] == 1.0 and kept.state.vrm[0] == np.float32(0.5)

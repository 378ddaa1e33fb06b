"""The layers on their own (layers.apply_layers) and in a frame pose (daemon/framepose.py: breathing and the clamp
after them): the order of the layers and the blink rule, on real Layers and a real Animator."""
from __future__ import annotations

import numpy as np
import pytest

from tha4bridge.animator import Animator
from tha4bridge.expressions import load_library
from tha4bridge.daemon.framepose import FramePoses, Shown
from tha4bridge.daemon.streams import Stream
from tha4bridge.layers import Injection, Layers, Look, Talking, apply_layers
from tha4bridge.pose import BREATHING, INDEX, NEUTRAL

LIB = load_library()


def test_blinks_give_way_to_an_expression_that_closes_the_eyes():
    blinking = NEUTRAL.copy()
    blinking[INDEX["eye_wink_left"]] = blinking[INDEX["eye_wink_right"]] = 1.0  # an idle blink, mid-way
    layers = Layers()
    assert apply_layers(blinking, "idle", layers, 10.0)[INDEX["eye_wink_left"]] == 1.0
    layers.expression.set(Look.of("joy", LIB["joy"], 1.0), 0.0, None, 10.0)  # happy-closed eyes
    p = apply_layers(blinking, "idle", layers, 10.0)
    assert p[INDEX["eye_wink_left"]] == 0.0 and p[INDEX["eye_happy_wink_left"]] == pytest.approx(0.8)
    layers.expression.set(Look.of("joy", LIB["joy"], 0.25), 0.0, None, 10.0)  # 0.2 closed: blinks weakened
    assert apply_layers(blinking, "idle", layers, 10.0)[INDEX["eye_wink_left"]] == pytest.approx(0.6)


def _frame(poses: FramePoses, layers: Layers, base, source: str, breathes: bool, now: float, report=None):
    stream = Stream("s", "demo", poser=None, alpha="straight")
    stream.layers = layers
    return poses.compose(stream, Shown(base, 0.0, source, (), breathes), now, report)[0]


def test_the_order_and_the_report():
    layers, animator = Layers(), Animator(t0=0.0)
    poses = FramePoses(animator)
    layers.expression.set(Look.of("joy", LIB["joy"], 1.0), 0.0, None, 0.0)
    i = INDEX["mouth_aaa"]
    layers.sources["game"] = Injection({i: 0.9}, 1.0, "set", 0.0, np.inf)
    layers.talking.set_level(0.3, 0.0)
    report = {}
    p = _frame(poses, layers, NEUTRAL, "control", False, 0.5, report)
    assert p[i] == pytest.approx(0.3)  # talking after injected after expression
    assert report["expression"]["params"]["mouth_aaa"] == pytest.approx(0.6)
    assert report["injected"]["params"]["mouth_aaa"] == pytest.approx(0.3) and report["injected"]["sources"] == ["game"]
    assert report["talking"] == {"mode": "level", "params": {"mouth_aaa": pytest.approx(-0.6)}}
    assert p[BREATHING] == pytest.approx(animator.breathing(0.5)) == report["breathing"]
    # a live tracker wins the mouth
    p = _frame(poses, layers, NEUTRAL, "tracker:vmc", False, 0.5, report)
    assert p[i] == pytest.approx(0.9) and "tracker" in report["talking"]["mode"]
    assert p[BREATHING] == pytest.approx(animator.breathing(0.5))  # every base breathes with the one clock
    held = NEUTRAL.copy()
    held[BREATHING] = 0.25  # a control pose that names breathing keeps it
    assert _frame(poses, layers, held, "control", True, 0.5)[BREATHING] == pytest.approx(0.25)


def test_procedural_talk_rate_envelope_and_pauses():
    talking = Talking(seed=1)
    talking.talk(True, 100.0)
    t = 100.0 + np.arange(0, 20.0, 0.001)
    m = np.array([talking.mouth(x)[1].sum() for x in t])
    openings = int(((m[1:] >= 0.3) & (m[:-1] < 0.3)).sum())
    assert 4.5 <= openings / 20.0 <= 7.5  # syllables a second (each an open and a close: ~12 changes/s)
    assert np.abs(np.diff(m)).max() < 0.035  # a half-sine envelope, never a jump (at most π/0.1 s per s)
    closed = np.concatenate([[0], (m == 0).astype(int), [0]])
    edges = np.flatnonzero(np.diff(closed))
    runs = (edges[1::2] - edges[::2]) * 0.001
    assert (runs >= 0.15).sum() >= 15  # pauses between words
    talking.talk(False, 110.0)
    assert talking.mouth(110.5) == (None, None)  # the syllable in progress finished, then nothing

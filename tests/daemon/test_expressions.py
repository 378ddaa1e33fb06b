"""Expressions, injected parameters and talking on a real daemon, sampled over its control socket (get_pose
over time) and its frame socket: eased fades, continuous interruptions, holds, the procedural talk's rate and
pauses, visemes at frame timestamps, set/add sources with weights and timeouts, breathing under every layer,
and bad requests refused, counted, and applying nothing."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from tha4bridge.client import FrameSubscriber
from tha4bridge.layers import VISEMES, VOWELS, ease

from tests.daemon.util import Served

PERIOD = 2.0  # --breathing-period


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    served = Served("--breathing-period", str(PERIOD), log_dir=tmp_path_factory.mktemp("expr"))
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def clean(d):
    yield
    d.ctl.call("release")
    d.ctl.call("set_expression", name="neutral", fade=0)
    d.ctl.call("talk", on=False)


def sample(d, seconds: float, every: float = 0.01) -> list[dict]:
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(d.ctl.get_pose())
        time.sleep(every)
    return out


def test_the_library_has_the_28_emotions_and_more(d):
    lib = d.ctl.call("expressions")["expressions"]
    names = ("admiration amusement anger annoyance approval caring confusion curiosity desire disappointment "
             "disapproval disgust embarrassment excitement fear gratitude grief joy love nervousness neutral "
             "optimism pride realization relief remorse sadness surprise wink_left smug sleepy shout").split()
    assert set(names) <= set(lib) and lib["neutral"] == {}
    assert lib["joy"]["mouth_raised_corner_left"] > 0.5


def test_a_fade_follows_the_eased_curve_in_the_given_time(d):
    fade, target = 0.6, d.ctl.call("expressions")["expressions"]["joy"]["mouth_raised_corner_left"]
    at = d.ctl.call("set_expression", name="joy", fade=fade)["at"]
    got = [(p["t"] - at, p["pose"]["mouth_raised_corner_left"]) for p in sample(d, fade + 0.2)]
    assert sum(0.05 < t < fade - 0.05 for t, _ in got) >= 5, got  # samples along the way, not just the ends
    for t, v in got:
        assert v == pytest.approx(target * ease(t / fade), abs=2e-3), (t, v)
    assert got[-1][1] == pytest.approx(target, abs=1e-4)
    # the layer is reported with its contribution
    layers = d.ctl.get_pose()["layers"]
    assert layers["expression"]["name"] == "joy" and layers["expression"]["params"]["eyebrow_happy_left"] > 0


def test_an_interrupted_fade_is_continuous(d):
    fade = 0.8
    d.ctl.call("set_expression", name="joy", fade=fade)
    first = sample(d, 0.35)
    at = d.ctl.call("set_expression", name="sadness", fade=fade)["at"]  # sadness leaves the corners alone
    got = [(p["t"], p["pose"]["mouth_raised_corner_left"]) for p in first + sample(d, fade + 0.1)]
    # the steepest an eased fade of 0.9 over `fade` s moves is 1.5 × 0.9 / fade per second: no sample pair
    # (across the interruption too) may jump more than that allows
    for (t0, v0), (t1, v1) in zip(got, got[1:]):
        assert abs(v1 - v0) <= 1.5 * 0.9 / fade * (t1 - t0) + 5e-3, (t0, v0, t1, v1)
    before = [v for t, v in got if t < at]
    assert before[-1] > 0.1  # it was well under way when interrupted
    assert got[-1][1] == pytest.approx(0.0, abs=1e-4)
    assert d.ctl.get_pose()["pose"]["eyebrow_troubled_left"] > 0.5


def test_hold_returns_to_the_previous_expression(d):
    d.ctl.call("set_expression", name="joy", fade=0)
    d.ctl.call("set_expression", name="surprise", fade=0.05, hold=0.3)
    assert d.ctl.get_pose()["layers"]["expression"]["name"] == "surprise"
    time.sleep(0.5)
    p = d.ctl.get_pose()
    assert p["layers"]["expression"]["name"] == "joy" and p["pose"]["eye_surprised_left"] == pytest.approx(0)


def test_blinks_give_way_to_an_expression_that_closes_the_eyes(d):
    d.ctl.call("set_expression", name="joy", fade=0)  # happy-closed eyes: idle blinks would close them twice
    winks = [p["pose"]["eye_wink_left"] for p in sample(d, 1.5, 0.02)]
    assert max(winks) == 0.0


def test_talking_opens_and_closes_the_mouth_at_a_speaking_rate_with_pauses(d):
    d.ctl.call("talk", on=True)
    got = sample(d, 3.0, 0.005)
    d.ctl.call("talk", on=False)
    t = np.array([p["t"] for p in got])
    m = np.array([sum(p["pose"][v] for v in VOWELS) for p in got])
    assert all(p["layers"]["talking"]["mode"] == "talk" for p in got)
    # openings: the mouth rising through 0.3; a natural envelope passes through the middle values too
    openings = int(((m[1:] >= 0.3) & (m[:-1] < 0.3)).sum())
    rate = openings / (t[-1] - t[0])
    assert 3.0 <= rate <= 9.0, rate  # ~6 syllables a second, each an open and a close
    assert ((m > 0.05) & (m < 0.25)).sum() >= 10  # not a square wave
    closed = m < 1e-3
    runs, run = [], 0.0
    for i in range(1, len(t)):
        run = run + (t[i] - t[i - 1]) if closed[i] and closed[i - 1] else 0.0
        runs.append(run)
    assert max(runs) >= 0.15  # pauses between words
    time.sleep(0.5)
    assert sum(d.ctl.get_pose()["pose"][v] for v in VOWELS) == 0.0  # off: the mouth closes and stays closed


def test_a_pushed_mouth_level_shows_and_lapses(d):
    d.ctl.call("mouth", level=0.7)
    p = d.ctl.get_pose()
    assert p["pose"]["mouth_aaa"] == pytest.approx(0.7) and p["layers"]["talking"]["mode"] == "level"
    time.sleep(1.2)  # not re-sent: the meter's program went away
    assert d.ctl.get_pose()["pose"]["mouth_aaa"] == 0.0


def test_frames_show_the_viseme_due_at_their_timestamp(d):
    step, names = 0.1, ["A", "I", "U", "E", "O", "closed"]
    items = [[i * step, names[i % 6], 0.8] for i in range(18)]
    start = time.time() + 0.3
    with FrameSubscriber(d.frames, streams="demo") as sub:
        d.ctl.call("visemes", start=start, items=items)
        frames, end = [], time.monotonic() + 2.6
        while time.monotonic() < end:
            f = sub.recv(timeout=0.2)
            if f is not None:
                frames.append(f.header)
    period = 1.0 / 30

    def due(t):
        k = math.floor((t - start) / step + 1e-9)
        return names[min(k, 17) % 6] if t >= start else None

    checked = 0
    for h in frames:
        t = h["t_render_start"]
        if not start + 0.01 < t < start + 17 * step:
            continue
        vowels = [h["pose"][26 + i] for i in range(5)]
        shown = "closed" if max(vowels) < 1e-6 else "AIUEO"[int(np.argmax(vowels))]
        assert shown in (due(t), due(t - period)), (t - start, shown, due(t))
        assert max(vowels) in (0.0, pytest.approx(0.8, abs=1e-6))
        checked += 1
    assert checked >= 15, f"only {checked} frames in the timeline"
    assert set(VISEMES) == set(names)


def test_set_and_add_sources_compose_by_weight_and_lapse(d):
    c = d.ctl
    c.inject("game", {"mouth_smirk": 1.0}, weight=0.5, timeout=0.5)
    c.inject("chat", {"mouth_smirk": 0.2, "head_x": 0.3}, mode="add", timeout=1.0)
    c.inject("tool", {"mouth_smirk": 0.0}, weight=0.5, timeout=0)  # set after "game"
    p = c.get_pose()
    # set sources oldest first: 0 → 0.5 (game) → 0.25 (tool), then add: + 0.2
    assert p["pose"]["mouth_smirk"] == pytest.approx(0.45, abs=1e-5)
    assert p["layers"]["injected"]["sources"] == ["chat", "game", "tool"]
    assert c.stats()["streams"]["demo"]["layers"]["sources"] == ["chat", "game", "tool"]
    time.sleep(0.6)  # game lapsed
    p = c.get_pose()
    assert p["pose"]["mouth_smirk"] == pytest.approx(0.2, abs=1e-5)
    assert p["layers"]["injected"]["sources"] == ["chat", "tool"]
    time.sleep(0.5)  # chat lapsed; tool (timeout 0) stays until released
    p = c.get_pose()
    assert p["layers"]["injected"]["sources"] == ["tool"] and p["pose"]["mouth_smirk"] == 0.0
    assert c.release(source="tool")["released"] == ["tool"]
    assert c.get_pose()["layers"]["injected"]["sources"] == []


def test_injected_values_go_over_the_expression_and_talking_over_both(d):
    c = d.ctl
    c.set_expression("joy", fade=0)
    c.inject("game", {"mouth_raised_corner_left": 0.1, "mouth_aaa": 0.9}, timeout=0)
    c.mouth(0.3)
    p = c.get_pose()
    assert p["pose"]["mouth_raised_corner_left"] == pytest.approx(0.1)
    assert p["pose"]["mouth_aaa"] == pytest.approx(0.3)  # talking comes after the injected layer
    assert p["layers"]["talking"]["params"]["mouth_aaa"] == pytest.approx(-0.6, abs=1e-4)


def test_breathing_never_stops_under_any_layer(d):
    c = d.ctl
    c.call("set_expression", name="sleepy", fade=0)
    c.inject("game", {"head_x": 0.5, "eye_wink_left": 1.0}, timeout=0)
    c.talk(True)
    got = [(p["t"], p["pose"]["breathing"]) for p in sample(d, PERIOD * 0.75, 0.02)]
    t, b = np.array(got).T
    assert b.max() - b.min() > 0.4
    # and it is the animator's one clock: b = 0.5 - A cos(w t + phase) fits every sample
    w = 2 * np.pi / PERIOD
    basis = np.stack([np.cos(w * t), np.sin(w * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, b - 0.5, rcond=None)
    assert abs(np.hypot(*coef) - 0.5) < 0.02 and np.abs(basis @ coef - (b - 0.5)).max() < 0.02


BAD = [
    ({"cmd": "set_expression", "name": "nope"}, "bad_request"),
    ({"cmd": "set_expression", "name": 3}, "bad_request"),
    ({"cmd": "set_expression", "name": "joy", "intensity": 1.5}, "bad_request"),
    ({"cmd": "set_expression", "name": "joy", "fade": float("nan")}, "bad_request"),
    ({"cmd": "set_expression", "name": "joy", "hold": -1}, "bad_request"),
    ({"cmd": "talk", "on": "yes"}, "bad_request"),
    ({"cmd": "mouth", "level": float("nan")}, "bad_request"),
    ({"cmd": "mouth"}, "bad_request"),
    ({"cmd": "visemes", "items": [[0, "Z", 1]]}, "bad_request"),
    ({"cmd": "visemes", "items": [[0, "A", 1], [float("inf"), "A", 1]]}, "bad_request"),
    ({"cmd": "visemes", "items": []}, "bad_request"),
    ({"cmd": "visemes", "start": "later", "items": [[0, "A", 1]]}, "bad_request"),
    ({"cmd": "inject", "source": "g", "params": {"nope": 1}}, "bad_pose"),
    ({"cmd": "inject", "source": "g", "params": {"mouth_aaa": float("nan")}}, "bad_pose"),
    ({"cmd": "inject", "source": "g", "params": {"mouth_aaa": "1"}}, "bad_pose"),
    ({"cmd": "inject", "source": "g", "params": {"breathing": 0.5}}, "bad_pose"),
    ({"cmd": "inject", "source": "g", "params": {"mouth_aaa": 1}, "mode": "mul"}, "bad_request"),
    ({"cmd": "inject", "source": "g", "params": {"mouth_aaa": 1}, "weight": 2}, "bad_request"),
    ({"cmd": "inject", "params": {"mouth_aaa": 1}}, "bad_request"),
    ({"cmd": "speak", "path": "/nonexistent.wav"}, "bad_request"),
]


def test_bad_requests_are_refused_counted_and_apply_nothing(d):
    time.sleep(0.3)  # a syllable still in progress when talking stopped has finished
    before_pose = d.ctl.get_pose()
    errors = d.ctl.stats()["control"]["errors"]
    for body, code in BAD:
        fields = {k: v for k, v in body.items() if k != "cmd"}
        reply = d.ctl.request(body["cmd"], **fields)
        assert reply["ok"] is False and reply["code"] == code, (body, reply)
        assert "\n" not in reply["error"] and len(reply["error"]) < 200, reply["error"]
    after = d.ctl.get_pose()
    assert d.ctl.stats()["control"]["errors"] == errors + len(BAD)
    assert after["layers"]["expression"]["name"] == before_pose["layers"]["expression"]["name"] == "neutral"
    assert after["layers"]["injected"]["sources"] == [] and after["layers"]["talking"]["mode"] is None
    assert d.proc.poll() is None

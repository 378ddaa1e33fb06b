"""Expressions, injected parameters and talking on a real daemon, sampled over its control socket (get_pose
over time) and its frame socket: eased fades, continuous interruptions, holds, the procedural talk's rate and
pauses, visemes at frame timestamps, set/add sources with weights and timeouts, breathing under every layer,
and bad requests refused, counted, and applying nothing."""
from __future__ import annotations

import math
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tha4bridge.client import FrameSubscriber
from tha4bridge.easing import smoothstep as ease
from tha4bridge.layers import VISEMES, VOWELS

from tests.daemon.test_expression_files import bursts
from tests.daemon.util import Served
from tests.trackers.util import msg as osc, wait_for

PERIOD = 2.0  # --breathing-period


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    folder = tmp_path_factory.mktemp("expr")
    (folder / "mine.toml").write_text("[tilt]\nhead_x = 0.4\n")  # a user folder adds an expression
    served = Served("--breathing-period", str(PERIOD), "--expressions", str(folder), log_dir=folder,
                    trackers=True)  # trackers on (nothing sends): the OSC mirrors arrive on the VMC port
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def clean(d):
    yield
    d.ctl.call("release")
    d.ctl.call("set_expression", name="neutral", fade=0)
    d.ctl.call("talk", on=False)
    # what a test leaves running ends by itself, not at once: its tracker stays live until it counts as lost (a
    # live tracker wins the mouth), a WAV's viseme timeline plays to its end, a pushed level lapses. The next
    # test (in whatever order they run) starts after all of that.
    quiet = lambda p: not p["source"].startswith("tracker:") and p["layers"]["talking"]["mode"] is None  # noqa: E731
    assert wait_for(lambda: quiet(d.ctl.get_pose()), 15.0), \
        f"still going 15 s after its test: {d.ctl.get_pose()['source']}, {d.ctl.get_pose()['layers']['talking']}"


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
    assert set(names) <= set(lib) and lib["neutral"] == {} and lib["tilt"] == {"head_x": 0.4}
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
    t_set = time.monotonic()  # the daemon starts the hold after this
    d.ctl.call("set_expression", name="surprise", fade=0.05, hold=0.3)
    name = d.ctl.get_pose()["layers"]["expression"]["name"]
    if time.monotonic() - t_set < 0.3:  # else a busy machine answered after the hold: nothing to check
        assert name == "surprise"
    # the hold's end and the fade back, waited for (was a 0.5 s sleep)
    back = lambda p: p["layers"]["expression"]["name"] == "joy" and p["pose"]["eye_surprised_left"] == pytest.approx(0)  # noqa: E731
    assert wait_for(lambda: back(d.ctl.get_pose()), 10.0), f"not back to joy 10 s after a 0.3 s hold: {d.ctl.get_pose()}"


def test_talking_opens_and_closes_the_mouth_with_pauses(d):
    """The rate and envelope are checked densely in tests/test_layers.py; here, that the daemon shows them
    (sampling over the socket on a loaded machine can be sparse, so only what survives sparse sampling)."""
    d.ctl.call("talk", on=True)

    def seen(got):  # (openings, closed samples, in-between samples)
        m = np.array([sum(p["pose"][v] for v in VOWELS) for p in got])
        return int(((m[1:] >= 0.3) & (m[:-1] < 0.3)).sum()), int((m < 1e-3).sum()), int(((m > 0.02) & (m < 0.3)).sum())

    # sampled until all three were seen often enough, or 15 s (was a fixed 3 s, too sparse on a loaded machine)
    got, end = sample(d, 3.0, 0.005), time.monotonic() + 12.0
    while not (lambda o, c, b: o >= 5 and c >= 3 and b >= 3)(*seen(got)) and time.monotonic() < end:
        got += sample(d, 0.5, 0.005)
    d.ctl.call("talk", on=False)
    m = np.array([sum(p["pose"][v] for v in VOWELS) for p in got])
    modes = {p["layers"]["talking"]["mode"] for p in got}
    assert modes == {"talk"}, f"talking modes seen: {modes}"
    assert int(((m[1:] >= 0.3) & (m[:-1] < 0.3)).sum()) >= 5  # it opens again and again
    assert (m < 1e-3).sum() >= 3 and ((m > 0.02) & (m < 0.3)).sum() >= 3  # closes, and passes in between
    # off: the syllable under way finishes, talking ends and the mouth is closed (waited for; was a 0.5 s sleep;
    # a closed mouth alone is not the event: it closes between syllables too), and stays closed
    done = lambda p: p["layers"]["talking"]["mode"] is None and sum(p["pose"][v] for v in VOWELS) == 0.0  # noqa: E731
    assert wait_for(lambda: done(d.ctl.get_pose()), 10.0), f"talking never ended: {d.ctl.get_pose()['layers']}"
    assert all(sum(d.ctl.get_pose()["pose"][v] for v in VOWELS) == 0.0 for _ in range(5))


def test_a_pushed_mouth_level_shows_and_lapses(d):
    t_set = time.monotonic()
    d.ctl.call("mouth", level=0.7)
    p = d.ctl.get_pose()
    if time.monotonic() - t_set < 1.0:  # else a busy machine answered after the level lapsed
        assert p["pose"]["mouth_aaa"] == pytest.approx(0.7) and p["layers"]["talking"]["mode"] == "level"
    # not re-sent: the meter's program went away, the level lapses (waited for; was a 1.2 s sleep)
    assert wait_for(lambda: d.ctl.get_pose()["pose"]["mouth_aaa"] == 0.0, 10.0), "the pushed level never lapsed"


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
    assert checked >= 5, f"only {checked} frames in the timeline"  # ~50 on an idle machine; CI is loaded
    assert set(VISEMES) == set(names)


def test_set_and_add_sources_compose_by_weight_and_lapse(d):
    c = d.ctl
    # Each lapse is waited for (were 0.6 s and 0.5 s sleeps), and what must still hold is checked only when the
    # reading lies inside the source's timeout (a busy machine can answer late). chat: 2.5 s, so that it is.
    t_game = time.monotonic()
    c.inject("game", {"mouth_smirk": 1.0}, weight=0.5, timeout=0.5)
    t_chat = time.monotonic()
    c.inject("chat", {"mouth_smirk": 0.2, "head_x": 0.3}, mode="add", timeout=2.5)
    c.inject("tool", {"mouth_smirk": 0.0}, weight=0.5, timeout=0)  # set after "game"
    p = c.get_pose()
    sources = c.stats()["streams"]["demo"]["layers"]["sources"]
    if time.monotonic() - t_game < 0.5:
        # set sources oldest first: 0 → 0.5 (game) → 0.25 (tool), then add: + 0.2
        assert p["pose"]["mouth_smirk"] == pytest.approx(0.45, abs=1e-5)
        assert p["layers"]["injected"]["sources"] == ["chat", "game", "tool"]
        assert sources == ["chat", "game", "tool"]
    assert wait_for(lambda: "game" not in c.get_pose()["layers"]["injected"]["sources"], 10.0), "game never lapsed"
    p = c.get_pose()
    if time.monotonic() - t_chat < 2.5:
        assert p["pose"]["mouth_smirk"] == pytest.approx(0.2, abs=1e-5)
        assert p["layers"]["injected"]["sources"] == ["chat", "tool"]
    # chat lapses; tool (timeout 0) stays until released
    assert wait_for(lambda: c.get_pose()["layers"]["injected"]["sources"] == ["tool"], 10.0), "chat never lapsed"
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
    # a syllable still in progress when talking stopped (an earlier test) has finished: waited for, was 0.3 s
    assert wait_for(lambda: d.ctl.get_pose()["layers"]["talking"]["mode"] is None, 10.0), "talking never ended"
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


def test_speak_wav_opens_the_mouth_on_the_loud_parts(d, tmp_path):
    wav = tmp_path / "bursts.wav"
    # loud 0.4 s, quiet 0.4 s, eight times: 6.4 s, so that a `speak` process slow to exit on a loaded machine
    # still leaves several stretches of each to sample
    bursts(wav, pattern=(0.4, 0.4) * 8)
    r = subprocess.run([sys.executable, "-m", "tha4bridge.cli", "speak", "--wav", str(wav), "--control",
                        d.control], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    start = float(r.stdout.split("starting at ")[1].split()[0])
    got = []
    while time.time() < start + 6.3:
        p = d.ctl.get_pose()
        got.append((p["t"] - start, p["pose"]["mouth_aaa"], p["layers"]["talking"]["mode"]))
        time.sleep(0.01)
    # one envelope window (1/30 s) of slack at each edge of the 0.4 s stretches
    loud = [a for t, a, _ in got if 0.05 < t % 0.8 < 0.35]
    quiet = [a for t, a, _ in got if 0.45 < t % 0.8 < 0.75]
    assert len(loud) >= 10 and min(loud) > 0.8, loud
    assert len(quiet) >= 10 and max(quiet) == 0.0, quiet
    assert all(m == "visemes" for t, _, m in got)
    reply = d.ctl.request("speak", path=str(tmp_path / "missing.wav"))  # the control command with a path
    assert reply["code"] == "bad_request" and "missing.wav: no such file" in reply["error"]


def test_osc_expression_talk_and_mouth(d):
    port = d.hello["trackers"]["vmc"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        def send(*msg):
            s.sendto(osc(*msg), ("127.0.0.1", port))

        send("/tha4/expression", "joy", 0.5, 0.0)
        assert wait_for(lambda: d.ctl.get_pose()["layers"]["expression"]["name"] == "joy", 10.0)
        p = d.ctl.get_pose()
        assert p["pose"]["mouth_raised_corner_left"] == pytest.approx(0.45, abs=1e-5)  # 0.9 × intensity 0.5
        send("/tha4/mouth", 0.6)
        assert wait_for(lambda: d.ctl.get_pose()["layers"]["talking"]["mode"] == "level", 10.0)
        assert d.ctl.get_pose()["pose"]["mouth_aaa"] == pytest.approx(0.6, abs=1e-5)
        send("/tha4/talk", 1)
        # the pushed level lapses; procedural talking remains (waited for; was a 1.1 s sleep)
        assert wait_for(lambda: d.ctl.get_pose()["layers"]["talking"]["mode"] == "talk", 10.0), \
            f"talking mode {d.ctl.get_pose()['layers']['talking']['mode']!r} 10 s after /tha4/talk 1"
        send("/tha4/talk", 0)
        assert wait_for(lambda: d.ctl.get_pose()["layers"]["talking"]["mode"] is None, 10.0)
        # refused by the command table (unknown name, level out of range): counted, nothing applied
        refused = d.ctl.stats()["control"]["osc_refused"]
        send("/tha4/expression", "nope")
        send("/tha4/mouth", 1.5)
        assert wait_for(lambda: d.ctl.stats()["control"]["osc_refused"] == refused + 2, 10.0)
        # malformed for OSC itself (a number where the name goes): dropped by the receiver, counted there
        send("/tha4/expression", 10.0)
        vmc = lambda: d.ctl.stats()["receivers"]["receivers"]["vmc"]  # noqa: E731
        assert wait_for(lambda: vmc()["malformed"].get("wrong_type", 0) >= 1, 10.0)
        p = d.ctl.get_pose()
        assert p["layers"]["expression"]["name"] == "joy" and p["layers"]["talking"]["mode"] is None


def test_a_live_tracker_wins_the_mouth_unless_told_otherwise(d):
    import threading

    port, stop = d.hello["trackers"]["vmc"], threading.Event()

    def track():  # a face tracker at ~30 Hz that sends the mouth
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not stop.is_set():
                for dgram in (osc("/VMC/Ext/Blend/Val", "A", 0.6), osc("/VMC/Ext/Blend/Apply")):
                    s.sendto(dgram, ("127.0.0.1", port))
                time.sleep(0.03)

    t = threading.Thread(target=track, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: (lambda p: p["source"].startswith("tracker:") and p["pose"]["mouth_aaa"] > 0.2)(
            d.ctl.get_pose()), 10.0)  # tracked, and its (smoothed) mouth well open
        d.ctl.mouth(0.1)
        p = d.ctl.get_pose()
        assert p["layers"]["talking"]["params"] == {} and "tracker" in p["layers"]["talking"]["mode"]
        assert p["pose"]["mouth_aaa"] > 0.2  # the tracker's open mouth
        d.ctl.mouth(0.1, over_tracker=True)
        p = d.ctl.get_pose()
        assert p["pose"]["mouth_aaa"] == pytest.approx(0.1) and p["layers"]["talking"]["mode"] == "level"
        assert d.ctl.request("talk", on=True, over_tracker="yes")["code"] == "bad_request"
    finally:
        stop.set()
        t.join(2)
        d.ctl.mouth(0.0)

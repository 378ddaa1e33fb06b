"""The layers other programs put over a stream's pose, and the one order they are composed in.

    base (tracker, or idle motion / a control hold)  →  expression  →  injected (by source)  →  talking
    (then breathing and the clamp: daemon/framepose.py assembles the whole frame pose)

Every layer is a function of the clock (`now`, time.time()), like the animator: any thread may compose any
moment and two readers of the same moment see the same pose. Commands change a stream's `Layers` under the
registry lock; `compose` reads them under the layers' own lock (the render thread composes outside the
registry lock).
"""
from __future__ import annotations

import bisect
import math
import random
import threading
from dataclasses import dataclass, field

import numpy as np

from .easing import smoothstep
from .pose import INDEX, NUM_PARAMETERS, PARAMETER_NAMES

ANIMATED_FPS = 30.0  # how often the scheduler re-renders a stream whose layers move with the clock
LEVEL_TIMEOUT = 1.0  # s: a pushed mouth level lapses when not re-sent (the meter's program went away)
VISEME_TAIL = 0.25  # s the last viseme of a timeline stays before the timeline ends
VOWELS = ("mouth_aaa", "mouth_iii", "mouth_uuu", "mouth_eee", "mouth_ooo")
_VOWEL_IDX = np.array([INDEX[v] for v in VOWELS])
VISEMES = {"A": 0, "I": 1, "U": 2, "E": 3, "O": 4, "closed": -1}  # viseme → index into VOWELS (-1 = none)
_WINK = (INDEX["eye_wink_left"], INDEX["eye_wink_right"])
_HAPPY_WINK = (INDEX["eye_happy_wink_left"], INDEX["eye_happy_wink_right"])


# --- expression -------------------------------------------------------------------------------------------------
@dataclass
class Look:
    """An expression at some intensity as (mask, premultiplied values): pose = base·(1 − mask) + amount."""

    name: str = "neutral"
    mask: np.ndarray = field(default_factory=lambda: np.zeros(NUM_PARAMETERS, np.float32))
    amount: np.ndarray = field(default_factory=lambda: np.zeros(NUM_PARAMETERS, np.float32))

    @staticmethod
    def of(name: str, values: dict[str, float], intensity: float) -> "Look":
        look = Look(name)
        for k, v in values.items():
            look.mask[INDEX[k]] = intensity
            look.amount[INDEX[k]] = intensity * v
        return look


class ExpressionLayer:
    """The expression a stream wears and the eased fade into it. A new expression fades from wherever the
    running fade is at that moment, so an interruption never jumps."""

    def __init__(self):
        self.start, self.target = Look(), Look()
        self.t0, self.fade = 0.0, 0.0
        self.hold_until, self.after = math.inf, Look()  # after `hold`: back to the expression before

    def look(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        self._expire_hold(now)
        a = smoothstep((now - self.t0) / self.fade) if self.fade > 0 else 1.0
        return (self.start.mask + a * (self.target.mask - self.start.mask),
                self.start.amount + a * (self.target.amount - self.start.amount))

    def fading(self, now: float) -> bool:
        return now < self.t0 + self.fade or not math.isinf(self.hold_until)

    def set(self, target: Look, fade: float, hold: float | None, now: float) -> None:
        mask, amount = self.look(now)
        before = self.target
        self.start, self.target, self.t0, self.fade = Look("fading", mask, amount), target, now, fade
        self.hold_until = math.inf if hold is None else now + hold
        self.after = before if hold is not None else Look()

    def _expire_hold(self, now: float) -> None:
        if now >= self.hold_until:  # start the way back at the moment the hold ended, not when first asked
            t, self.hold_until = self.hold_until, math.inf
            a = smoothstep((t - self.t0) / self.fade) if self.fade > 0 else 1.0
            mask = self.start.mask + a * (self.target.mask - self.start.mask)
            amount = self.start.amount + a * (self.target.amount - self.start.amount)
            self.start, self.target, self.t0 = Look("fading", mask, amount), self.after, t
            self.after = Look()

    def name(self, now: float) -> str:
        self._expire_hold(now)
        return self.target.name


# --- injected parameters --------------------------------------------------------------------------------------
@dataclass
class Injection:
    values: dict[int, float]
    weight: float
    mode: str  # "set" replaces (lerp by weight), "add" stacks (value × weight)
    at: float
    until: float  # inf = until released

    def to_dict(self, now: float) -> dict:
        return {"mode": self.mode, "weight": self.weight, "params": {PARAMETER_NAMES[i]: v for i, v in
                                                                     self.values.items()},
                "expires_in": None if math.isinf(self.until) else round(self.until - now, 3)}


# --- talking --------------------------------------------------------------------------------------------------
class Talking:
    """The mouth of a speaking character: a timeline of visemes, else a pushed level, else procedural talk."""

    def __init__(self, seed: int | None = None):
        self._rng = random.Random(seed)
        self.on_since: float | None = None
        self.off_at = math.inf
        self._syllables: list[tuple[float, float, int, float]] = []  # (start, duration, vowel or -1, amplitude)
        self.level, self.level_at = 0.0, -math.inf
        self._times: list[float] = []  # viseme timeline: absolute times, visemes, weights
        self._items: list[tuple[int, float]] = []
        self.over_tracker = False  # talking replaces a live tracker's mouth only when a request said so

    def talk(self, on: bool, now: float) -> None:
        if on and (self.on_since is None or now >= self.off_at):
            self.on_since, self.off_at, self._syllables = now, math.inf, []
        elif not on and self.on_since is not None and math.isinf(self.off_at):
            self.off_at = now  # the syllable in progress finishes: the mouth closes, it does not snap shut

    def set_level(self, level: float, now: float) -> None:
        self.level, self.level_at = level, now

    def set_visemes(self, start: float, items: list[tuple[float, str, float]]) -> None:
        items = sorted(items, key=lambda it: it[0])
        self._times = [start + t for t, _, _ in items]
        self._items = [(VISEMES[v], w) for _, v, w in items]

    def _syllable(self, t: float):
        """The syllable (or pause) of procedural talk at `t`; the schedule is drawn once, as far as asked.

        About 6 syllables a second, each an open-close of one vowel (≈ 12 mouth changes a second), in words
        of about 5 syllables with 0.15–0.35 s pauses between them."""
        s = self._syllables
        if not s:
            s.append((self.on_since, 0.0, -1, 0.0))
        while s[-1][0] + s[-1][1] <= t:
            end = s[-1][0] + s[-1][1]
            if s[-1][2] >= 0 and self._rng.random() < 0.2:  # end of a word
                s.append((end, self._rng.uniform(0.15, 0.35), -1, 0.0))
            else:
                vowel = self._rng.choices(range(5), weights=(4, 2, 1, 2, 2))[0]
                s.append((end, self._rng.uniform(0.1, 0.15), vowel, self._rng.uniform(0.55, 1.0)))
        if len(s) > 256:
            del s[:128]
        i = bisect.bisect_right(s, (t, math.inf)) - 1
        return s[max(i, 0)]

    def mouth(self, now: float) -> tuple[str | None, np.ndarray | None]:
        """(what drives the mouth, the five vowel values) at `now`, or (None, None) when nobody talks."""
        if self._times and self._times[0] <= now <= self._times[-1] + VISEME_TAIL:
            vowel, weight = self._items[bisect.bisect_right(self._times, now) - 1]
            v = np.zeros(len(VOWELS), np.float32)
            if vowel >= 0:
                v[vowel] = weight
            return "visemes", v
        if now - self.level_at <= LEVEL_TIMEOUT:
            v = np.zeros(len(VOWELS), np.float32)
            v[0] = self.level
            return "level", v
        if self.on_since is not None and now >= self.on_since:
            start, dur, vowel, amp = self._syllable(now)
            if start >= self.off_at or (vowel < 0 and now >= self.off_at):  # off, and the last syllable done
                return None, None
            v = np.zeros(len(VOWELS), np.float32)
            if vowel >= 0 and dur > 0:
                v[vowel] = amp * math.sin(math.pi * min((now - start) / dur, 1.0))  # a natural open-close
            return "talk", v
        return None, None

    def moving(self, now: float) -> bool:
        return (bool(self._times) and now <= self._times[-1] + VISEME_TAIL) or now - self.level_at <= \
            LEVEL_TIMEOUT or (self.on_since is not None and now < self.off_at + 0.5)


# --- one stream's layers ------------------------------------------------------------------------------------
class Layers:
    def __init__(self):
        self.lock = threading.Lock()
        self.expression = ExpressionLayer()
        self.sources: dict[str, Injection] = {}
        self.talking = Talking()
        self.version = 0  # bumped by every command: the scheduler re-renders on a change

    def changed(self) -> None:
        self.version += 1

    def active_sources(self, now: float) -> list[str]:
        return sorted(n for n, inj in self.sources.items() if now < inj.until)

    def key(self, now: float) -> tuple:
        """Changes whenever the composed pose may have: a command, a lapse, or (while something moves with
        the clock) every 1/ANIMATED_FPS s."""
        with self.lock:
            moving = self.expression.fading(now) or self.talking.moving(now)
            return (self.version, tuple(self.active_sources(now)),
                    int(now * ANIMATED_FPS) if moving else 0)

    def summary(self, now: float) -> dict:
        with self.lock:
            mode, _ = self.talking.mouth(now)
            return {"expression": self.expression.name(now), "sources": self.active_sources(now),
                    "talking": mode}


def _delta(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    return {PARAMETER_NAMES[i]: round(float(after[i] - before[i]), 4)
            for i in np.flatnonzero(np.abs(after - before) > 1e-6)}


def apply_layers(base: np.ndarray, base_source: str, layers: Layers, now: float,
                 report: dict | None = None) -> np.ndarray:
    """A copy of `base` with the stream's layers over it, in the documented order (breathing and the clamp
    follow in daemon/framepose.py). With `report`, fills it with each layer's contribution ({parameter:
    change}) and the active sources."""
    p = np.array(base, dtype=np.float32, copy=True)
    base = p.copy()
    with layers.lock:
        # expression: base·(1 − mask) + amount, then idle blinks give way to an expression closing the eyes
        mask, amount = layers.expression.look(now)
        before = p.copy()
        p = p * (1.0 - mask) + amount
        closing = max(amount[_WINK[k]] + amount[_HAPPY_WINK[k]] for k in (0, 1))
        suppress = min(max(closing / 0.5, 0.0), 1.0)  # half-closed by the expression: no blinks at all
        for i in _WINK:
            p[i] -= (1.0 - mask[i]) * base[i] * suppress
        expression = _delta(before, p)
        # injected: `set` sources (oldest first) replace by their weight, then `add` sources stack
        before = p.copy()
        live = [(n, inj) for n, inj in layers.sources.items() if now < inj.until]
        for mode in ("set", "add"):
            for _, inj in sorted((x for x in live if x[1].mode == mode), key=lambda x: x[1].at):
                for i, v in inj.values.items():
                    p[i] = p[i] + inj.weight * (v - p[i]) if mode == "set" else p[i] + inj.weight * v
        injected = _delta(before, p)
        # talking: replaces the five vowels, unless a live tracker drives the face (the tracker's mouth wins
        # unless the last talking request said `over_tracker`)
        before = p.copy()
        tracker = base_source.startswith("tracker:")
        talk_mode, vowels = layers.talking.mouth(now)
        yields = tracker and not layers.talking.over_tracker
        if vowels is not None and not yields:
            p[_VOWEL_IDX] = vowels
        talking = _delta(before, p)
        sources = [n for n, _ in sorted(live, key=lambda x: x[0])]
        expression_name = layers.expression.name(now)
    if report is not None:
        report.update({"base": base_source, "expression": {"name": expression_name, "params": expression},
                       "injected": {"params": injected, "sources": sources},
                       "talking": {"mode": talk_mode if not yields or vowels is None else
                                   f"{talk_mode} (a live tracker drives the mouth)", "params": talking}})
    return p

"""Which arrangement of the wide layers renders, chosen by timing them on this machine, not by CPU flags.

A candidate is the dtype of the wide GEMMs (float32, or the reduced dtype `arithmetic.choose` finds native:
a bf16 GEMM without native support is 5-12x slower, so that one is never timed) and whether the face and
the 512 level run in bands of `BAND_ROWS` pixels (renderer lever 7; CPU only: it is about caches). On a quiet
Zen 4, bfloat16 bought 0-16 % and bands 15 %; with another process busy, bands lost 20-45 % on Zen 1. So:

- at load, `Tuner.choose` times body passes over an eighth of the frame with each candidate, interleaved,
  and keeps the fastest (best of two or three rounds; about `LOAD_BUDGET_S` at most on a quiet machine);
- now and then (`RECHECK_S`), one real body pass runs with another candidate instead; when that candidate is
  at least `MARGIN` faster than the chosen one's recent passes of the same kind twice in a row, it becomes the
  chosen one (a streamer's load changes).

`exact` has one candidate, float32 without bands, and times nothing: bands gave the same bits here (lambda_00,
torch.equal), but nothing promises that a BLAS picks the same kernel for a band as for a whole frame.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np
import torch

from ..imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS
from ..pose import NEUTRAL
from ..region import Region

BAND_ROWS = 2048  # lever 7's band: 2048 pixels × 90 channels × 4 B = 0.7 MB, inside a 1 MiB L2
LOAD_BUDGET_S = 2.0  # seconds of timing at load after which no third round starts
RECHECK_S = 30.0  # seconds between two real body passes with another candidate
MARGIN = 0.9  # a candidate must take at most this fraction of the chosen one's time to replace it
WINS = 2  # ... this many times in a row


@dataclass(frozen=True)
class Candidate:
    dtype: torch.dtype
    band_rows: int = 0

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.") + (f"+bands{self.band_rows}" if self.band_rows else "")


def candidates(mode: str, reduced: torch.dtype, device: torch.device, band_rows: int | None,
               forced: bool = False) -> list[Candidate]:
    """What is worth timing: float32 and the native reduced dtype (`fast` only; `forced`: the reduced one only);
    with and without bands when `band_rows` is None (`fast` on a CPU), else the given bands. `exact`: one."""
    if mode != "fast":
        dtypes = [torch.float32]
    else:
        dtypes = [reduced] if forced or reduced == torch.float32 else [torch.float32, reduced]
    if band_rows is not None:
        bands = [band_rows]
    else:
        bands = [0, BAND_ROWS] if mode == "fast" and device.type == "cpu" else [0]
    return [Candidate(d, b) for d in dtypes for b in bands]


class Tuner:
    """The chosen candidate, the ms measured for each, and the occasional re-check on real body passes."""

    def __init__(self, cands: list[Candidate], on_switch: Callable[[Candidate], None] = lambda c: None,
                 recheck_s: float = RECHECK_S):
        self.candidates, self.chosen = list(cands), cands[0]
        self.load_ms: dict[Candidate, float] = {}  # a body pass over an eighth of the frame, at load (best round)
        self.last_check: tuple[Candidate, float, Candidate, float] | None = None  # (tried, ms, chosen, median ms)
        self.switches = 0
        self._on_switch, self._recheck_s = on_switch, recheck_s
        self._lock = threading.Lock()
        self._recent: dict[Hashable, deque] = {}  # key → the chosen candidate's latest ms for that kind of pass
        self._seen: set[tuple[Candidate, Hashable]] = set()  # the first pass of each kind allocates: not timed
        self._wins: dict[Candidate, int] = {}
        self._turn = 0
        self._due = time.monotonic() + recheck_s

    @property
    def tuning(self) -> bool:
        return len(self.candidates) > 1

    def choose(self, time_pass: Callable[[Candidate], float], budget_s: float = LOAD_BUDGET_S,
               max_rounds: int = 3) -> Candidate:
        """Time `time_pass(candidate)` (ms) for each candidate in rounds, interleaved (so that machine noise hits
        all alike), after one warm-up pass of the first (it allocates the buffers the others share); stop after
        `max_rounds`, or the second or later round that ends past `budget_s`; keep each candidate's best."""
        if not self.tuning:
            return self.chosen
        start = time.perf_counter()
        time_pass(self.candidates[0])
        best = {c: float("inf") for c in self.candidates}
        for r in range(max_rounds):
            for c in (self.candidates if r % 2 == 0 else self.candidates[::-1]):
                best[c] = min(best[c], time_pass(c))
            if r >= 1 and time.perf_counter() - start > budget_s:  # at least two rounds: best of two
                break
        self.load_ms = best
        self._switch(min(self.candidates, key=best.__getitem__))
        self._due = time.monotonic() + self._recheck_s
        return self.chosen

    def pick(self, key: Hashable) -> Candidate:
        """The candidate for the next body pass of kind `key`: the chosen one, or when a re-check is due
        another one (in turn)."""
        if not self.tuning or time.monotonic() < self._due:
            return self.chosen
        with self._lock:
            if len(self._recent.get(key, ())) < 3:  # nothing to compare with yet (start-up, a new kind of pass)
                return self.chosen
            others = [c for c in self.candidates if c != self.chosen]
            return others[self._turn % len(others)]

    def record(self, cand: Candidate, key: Hashable, ms: float) -> None:
        """A body pass of kind `key` took `ms` with `cand` (what `pick` gave)."""
        if not self.tuning:
            return
        with self._lock:
            if (cand, key) not in self._seen:  # its first pass allocated buffers: a warm-up, not a measure
                self._seen.add((cand, key))
                return
            recent = self._recent.setdefault(key, deque(maxlen=9))
            if cand == self.chosen:
                recent.append(ms)
                return
            self._turn += 1
            self._due = time.monotonic() + self._recheck_s
            if len(recent) < 3:
                return
            median = statistics.median(recent)
            self.last_check = (cand, ms, self.chosen, median)
            if ms < MARGIN * median:
                self._wins[cand] = self._wins.get(cand, 0) + 1
                self._turn -= 1  # the same one again next time: a second win switches
            else:
                self._wins[cand] = 0
            if self._wins[cand] >= WINS:
                self._switch(cand)
                self.switches += 1

    def _switch(self, cand: Candidate) -> None:
        if cand != self.chosen:
            self._recent.clear()
        self._wins.clear()
        self.chosen = cand
        self._on_switch(cand)

    def line(self, reason: str) -> str:
        """'bfloat16+bands2048 (timed at load, ms per eighth-frame body pass: ...; reason)' for the banner."""
        if not self.load_ms:
            return f"{self.chosen.name} (one candidate; {reason})"
        ranked = sorted(self.candidates, key=self.load_ms.__getitem__)
        timed = ", ".join(f"{c.name} {self.load_ms[c]:.0f}" for c in ranked)
        live = ""
        if self.last_check:
            tried, ms, chosen, median = self.last_check
            live = f"; last re-check on a real body pass: {tried.name} {ms:.0f} vs {chosen.name} {median:.0f} (median)"
        switched = f"; switched {self.switches}x since" if self.switches else ""
        return f"{self.chosen.name} (timed at load, ms per eighth-frame body pass: {timed}{live}{switched}; {reason})"


@torch.inference_mode()
def time_body(r, cand: Candidate) -> float:
    """ms of one face and one body pass of renderer `r` with `cand` over the eighth of the frame across its middle
    (the whole frame when its levels do not double): start-up time, so short."""
    s = r.sizes[-1]
    region = Region(0, 7 * s // 16, s, s // 8) if r.can_crop else None
    pose = torch.as_tensor(np.asarray(NEUTRAL, np.float32)[None], device=r.device)
    wins = r._wins(region)
    buf = r.buffers.get(("tune", 1, region))
    t = time.perf_counter()
    r._use(cand)  # the face's dtype is the candidate's (the body's is float32 where it would be bfloat16)
    r.face(pose, buf)
    r.body(pose, buf, False, wins, cand=cand)
    if r.device.type == "cuda":
        torch.cuda.synchronize(r.device)
    return (time.perf_counter() - t) * 1000.0


GATE_DB = 40.0  # fast's promise against exact: a reduced dtype that scores under it is not a candidate
GATE_POSES = (  # the head turned, the mouth open, eyes half shut, breathing: where bf16 rounding showed most
    {"head_x": 0.3, "head_y": -0.4, "neck_z": 0.2, "mouth_aaa": 0.8, "breathing": 0.5},
    {"head_x": -0.2, "head_y": 0.5, "mouth_ooo": 0.6, "eye_wink_left": 0.5, "eye_wink_right": 0.5},
)


@torch.inference_mode()
def gate(r, cands: list[Candidate]) -> tuple[list[Candidate], dict[torch.dtype, float]]:
    """The candidates whose dtype keeps whole frames ≥ GATE_DB from float32 on GATE_POSES (float32 always does),
    and each reduced dtype's worst PSNR. Measured on lambda_00 (Zen 5) against exact: a bfloat16 face alone
    36.6–39.1 dB, a bfloat16 body alone 32–33 dB with the head turned: bf16 is not a candidate there."""
    from ..pose import INDEX

    reduced = [d for d in dict.fromkeys(c.dtype for c in cands) if d != torch.float32]
    if not reduced:
        return cands, {}
    chosen, buf = r.tuner.chosen, r.buffers.get(("gate", 1, None))
    wins = r._wins(None)
    frames: dict[torch.dtype, list[torch.Tensor]] = {}
    for d in [torch.float32, *reduced]:
        r._use(Candidate(d))
        out = []
        for values in GATE_POSES:
            p = np.asarray(NEUTRAL, np.float32).copy()
            for k, v in values.items():
                p[INDEX[k]] = v
            pose = torch.as_tensor(p[None], device=r.device)
            image = buf["image"]
            image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = r.face(pose, buf).permute(0, 3, 1, 2)
            out.append(r.compose(image, r.body(pose, buf, False, wins, cand=Candidate(d)), wins[-1], buf).clone())
        frames[d] = out
    r._use(chosen)
    worst = {d: min(_psnr(a, b) for a, b in zip(frames[d], frames[torch.float32])) for d in reduced}
    return [c for c in cands if c.dtype == torch.float32 or worst[c.dtype] >= GATE_DB], worst


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((((a - b) / 2) ** 2).mean())  # frames in [-1, 1]: PSNR on the [0, 1] scale
    return float("inf") if mse == 0 else -10.0 * float(np.log10(mse))


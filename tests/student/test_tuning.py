"""The arrangement `fast` renders with is chosen by timing (student/tuning.py): the faster of two candidates
wins on real timing, the renderer's load-time choice is the fastest it measured, a real-frame re-check
switches only on repeated wins, and `bench` times the steady state after the mask's calibration. The
no-bfloat16 emulation (float32 candidates only) is test_arithmetic.test_fast_is_never_slower_than_exact_without_bf16."""
from __future__ import annotations

import time

import torch

from tests.shared import LAMBDA_00, needs_fixtures
from tha4bridge.cli.offline_tools import bench
from tha4bridge.student import SirenRenderer, StudentPoser, tuning
from tha4bridge.student.tuning import Candidate, Tuner, candidates


def test_the_faster_of_two_candidates_is_chosen_by_real_timing():
    """One candidate does eight times the other's GEMMs (slower by construction, by far more than noise; best
    of five rounds each); listed first or second, the cheap one wins."""
    a, b = torch.randn(384, 384), torch.randn(384, 384)

    def work(reps: int) -> float:
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        return (time.perf_counter() - t) * 1000.0

    cheap, dear = Candidate(torch.float32), Candidate(torch.float32, 64)
    cost = {cheap: 2, dear: 16}
    for order in ([cheap, dear], [dear, cheap]):
        tuner = Tuner(order)
        assert tuner.choose(lambda c: work(cost[c]), budget_s=10.0, max_rounds=5) == cheap, tuner.load_ms
        assert set(tuner.load_ms) == {cheap, dear} and tuner.load_ms[cheap] < tuner.load_ms[dear]
        assert tuner.line("why").startswith("float32 (timed at load")


def test_candidates_are_gated_by_mode_and_dtype():
    cpu = torch.device("cpu")
    assert candidates("exact", torch.bfloat16, cpu, None) == [Candidate(torch.float32)]
    assert candidates("fast", torch.float32, cpu, None) == [Candidate(torch.float32),
                                                            Candidate(torch.float32, tuning.BAND_ROWS)]
    assert [c.dtype for c in candidates("fast", torch.bfloat16, cpu, 0)] == [torch.float32, torch.bfloat16]
    assert candidates("fast", torch.bfloat16, cpu, 0, forced=True) == [Candidate(torch.bfloat16)]


def test_a_real_frame_recheck_switches_only_on_repeated_wins():
    """Every `recheck_s` one body pass runs with another candidate; its first pass of a kind is a warm-up; it
    replaces the chosen one after WINS passes at most MARGIN of the chosen one's recent median."""
    a, b = Candidate(torch.float32), Candidate(torch.bfloat16)
    switched = []
    tuner = Tuner([a, b], switched.append, recheck_s=0.0)
    tuner._due = float("inf")
    for _ in range(4):
        tuner.record(tuner.pick("k"), "k", 100.0)  # the chosen one (the first: a warm-up)
    tuner._due = 0.0
    for ms, chosen in ((50.0, a), (95.0, a), (50.0, a), (50.0, b)):  # warm-up, not faster enough, two wins
        c = tuner.pick("k")
        assert c == b
        tuner.record(c, "k", ms)
        tuner._due = 0.0
        assert tuner.chosen == chosen
    assert switched == [b] and tuner.switches == 1


@needs_fixtures
def test_the_renderer_renders_with_the_fastest_candidate_it_timed(monkeypatch, exact):
    """Bands of 16 rows (thousands of tiny GEMMs) are slower by construction: whatever the dtypes, the renderer
    chooses no bands, the fastest it measured, and its banner line names every candidate."""
    monkeypatch.setattr(tuning, "BAND_ROWS", 16)
    r = SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(), mode="fast")
    t = r.tuner
    assert len(t.candidates) >= 2 and set(t.load_ms) == set(t.candidates)
    assert t.chosen.band_rows == 0 and t.chosen == min(t.load_ms, key=t.load_ms.get), t.load_ms
    assert r.band_rows == 0 and all(w.dtype in (torch.float32, t.chosen.dtype) for w, _ in r.face_hidden)
    assert all(c.name in r.arithmetic_line() for c in t.candidates)
    assert exact.renderer.arithmetic_line() == "float32 (exact mode)" and not exact.renderer.tuner.tuning


@needs_fixtures
def test_bench_times_the_steady_state_after_calibration(monkeypatch):
    """`bench` on a fast student joins the visibility mask's calibration first: the timed frames start after it
    ended, and the result says so."""
    fast = StudentPoser(LAMBDA_00, device="cpu", mode="fast")
    ended = []
    calibrate = fast.renderer.calibrate_mask
    monkeypatch.setattr(fast.renderer, "calibrate_mask", lambda: (calibrate(), ended.append(time.time())))
    r = bench(fast, frames=1, warmup=1)
    assert fast.renderer.mask.calibrated and ended and r["timed_from"] >= ended[0]
    assert r["calibration_s"] > 0 and "after the visibility mask's calibration" in r["steady_state"]

"""Student inference speed and quality: `exact` and `fast` against the straightforward baseline.

The baseline is the official forward pass written plainly (`student.FaceMorpher`/`BodyMorpher`: NCHW 1×1
convolutions, concatenated position/pose inputs, full-resolution level mixing), run in the same process,
interleaved round by round with the candidates so that machine noise hits all of them alike.

    python benchmarks/bench_student.py [--student DIR] [--rounds 7] [--batch 4] [--json]

Prints ms/frame (median), the speed-up ratio against the baseline, and PSNR: `exact` against the official
outputs in ../shared/fixtures/tha4/reference/lambda_00 (when benchmarking lambda_00) and against the baseline;
`fast` against `exact` on random poses.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tha4bridge.imaging import psnr
from tha4bridge.pose import LOWER, NUM_PARAMETERS, UPPER
from tha4bridge.student import Levers, SirenRenderer, StudentPoser

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "tha4"


def random_poses(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (LOWER + (UPPER - LOWER) * rng.random((n, NUM_PARAMETERS))).astype(np.float32)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def quality(exact: StudentPoser, fast: StudentPoser, q_poses: np.ndarray, student: str) -> dict:
    """PSNR (min over poses) of exact vs the plain forward and the official outputs, fast vs exact; also warms up."""
    base_out = torch.cat([exact.reference_forward(p)[0] for p in q_poses])
    exact_out = torch.cat([exact.render(p).clone() for p in q_poses])
    fast_out = torch.cat([fast.render(p).clone() for p in q_poses])
    psnr_fixture = None
    ref = FIXTURES / "reference" / "lambda_00"
    if Path(student).resolve() == (FIXTURES / "students" / "lambda_00").resolve() and ref.is_dir():
        ref_poses = np.load(ref / "poses.npy")
        blended = np.load(ref / "outputs_f16.npz")["blended"]
        psnr_fixture = min(psnr(exact.render(ref_poses[i])[0], blended[i].astype(np.float32))
                           for i in range(0, len(ref_poses), 5))
    return {"exact_vs_official_fixture_min": psnr_fixture,
            "exact_vs_baseline_min": min(psnr(a, b) for a, b in zip(exact_out, base_out)),
            "fast_vs_exact_min": min(psnr(a, b) for a, b in zip(fast_out, exact_out))}


def time_rounds(exact: StudentPoser, fast: StudentPoser, poses: np.ndarray, rounds: int,
                batch: np.ndarray) -> dict[str, list[float]]:
    """ms/frame per path, interleaved round by round so that machine noise hits every path alike."""
    # Lever ablation (exact arithmetic): levers 1+2 alone, then + low-res mixing (3); `exact` has all four.
    ablation = {
        "levers_1_2": SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(),
                                    levers=Levers(low_res_mixing=False, bias_in_gemm=False)),
        "levers_1_2_3": SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(),
                                      levers=Levers(low_res_mixing=True, bias_in_gemm=False)),
    }
    for r_ in ablation.values():
        r_.render(exact.prepare(poses[:1]))

    times: dict[str, list[float]] = {k: [] for k in ("baseline", *ablation, "exact", "fast", "exact_batch", "fast_batch")}
    for r in range(rounds):
        p = poses[r: r + 1]
        times["baseline"].append(timed(lambda: exact.reference_forward(p)))
        for name, r_ in ablation.items():
            tp = exact.prepare(p)
            times[name].append(timed(lambda: r_.render(tp)))
        times["exact"].append(timed(lambda: exact.render(p)))
        times["fast"].append(timed(lambda: fast.render(p)))
        times["exact_batch"].append(timed(lambda: exact.render(batch)) / len(batch))
        times["fast_batch"].append(timed(lambda: fast.render(batch)) / len(batch))
    return times


def print_table(res: dict, batch: int) -> None:
    med, up, q = res["ms_per_frame_median"], res["speedup_vs_baseline"], res["psnr_db"]
    print(f"student {res['student']}  threads {res['threads']}  rounds {res['rounds']}  (batch {batch})")
    print(f"{'path':<12} {'ms/frame':>9} {'x baseline':>11}  quality")
    print(f"{'baseline':<12} {med['baseline']:9.1f} {1.0:11.2f}  (the plain official forward pass)")
    fixture = q["exact_vs_official_fixture_min"]
    fx = f"{fixture:.1f} dB vs official outputs, " if fixture else ""
    print(f"{'levers 1+2':<12} {med['levers_1_2']:9.1f} {up['levers_1_2']:11.2f}  channels-last GEMMs, reused buffers, first layers without GEMM")
    print(f"{'+ lever 3':<12} {med['levers_1_2_3']:9.1f} {up['levers_1_2_3']:11.2f}  + mix then upsample (low-res first layers)")
    print(f"{'exact':<12} {med['exact']:9.1f} {up['exact']:11.2f}  "
          f"+ lever 4 (bias in GEMM) = all levers, via StudentPoser; {fx}{q['exact_vs_baseline_min']:.1f} dB vs baseline (min)")
    print(f"{'fast':<12} {med['fast']:9.1f} {up['fast']:11.2f}  "
          f"{q['fast_vs_exact_min']:.1f} dB vs exact (min over random poses)")
    print(f"{'exact x' + str(batch):<12} {med['exact_batch']:9.1f} {up['exact_batch']:11.2f}  per frame, batched")
    print(f"{'fast x' + str(batch):<12} {med['fast_batch']:9.1f} {up['fast_batch']:11.2f}  per frame, batched")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default=str(FIXTURES / "students" / "lambda_00"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=4, help="batch size for the per-frame batch figure")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    exact = StudentPoser(args.student, device="cpu", mode="exact")
    fast = StudentPoser(args.student, device="cpu", mode="fast")
    poses = random_poses(args.rounds + 8)
    batch = poses[: args.batch]
    psnr_db = quality(exact, fast, poses[-8:], args.student)  # quality first: it also warms every path up
    exact.render(batch), fast.render(batch)
    med = {k: statistics.median(v) for k, v in time_rounds(exact, fast, poses, args.rounds, batch).items()}
    res = {
        "student": str(args.student), "threads": torch.get_num_threads(), "rounds": args.rounds,
        "ms_per_frame_median": med,
        "speedup_vs_baseline": {k: med["baseline"] / v for k, v in med.items() if k != "baseline"},
        "psnr_db": psnr_db,
    }
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print_table(res, args.batch)


if __name__ == "__main__":
    main()

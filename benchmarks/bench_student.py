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
    one = poses[:1]
    batch = poses[: args.batch]

    # Quality first (also warms every path up).
    q_poses = poses[-8:]
    base_out = torch.cat([exact.reference_forward(p)[0] for p in q_poses])
    exact_out = torch.cat([exact.render(p).clone() for p in q_poses])
    fast_out = torch.cat([fast.render(p).clone() for p in q_poses])
    psnr_exact_vs_base = min(psnr(a, b) for a, b in zip(exact_out, base_out))
    psnr_fast_vs_exact = min(psnr(a, b) for a, b in zip(fast_out, exact_out))
    psnr_fixture = None
    ref = FIXTURES / "reference" / "lambda_00"
    if Path(args.student).resolve() == (FIXTURES / "students" / "lambda_00").resolve() and ref.is_dir():
        ref_poses = np.load(ref / "poses.npy")
        blended = np.load(ref / "outputs_f16.npz")["blended"]
        psnr_fixture = min(psnr(exact.render(ref_poses[i])[0], blended[i].astype(np.float32))
                           for i in range(0, len(ref_poses), 5))
    exact.render(batch), fast.render(batch)

    # Lever ablation (exact arithmetic): levers 1+2 alone, then + low-res mixing (3); `exact` has all four.
    ablation = {
        "levers_1_2": SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(),
                                    levers=Levers(low_res_mixing=False, bias_in_gemm=False)),
        "levers_1_2_3": SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(),
                                      levers=Levers(low_res_mixing=True, bias_in_gemm=False)),
    }
    for r_ in ablation.values():
        r_.render(exact.prepare(one))

    times: dict[str, list[float]] = {k: [] for k in ("baseline", *ablation, "exact", "fast", "exact_batch", "fast_batch")}
    for r in range(args.rounds):
        p = poses[r: r + 1]
        times["baseline"].append(timed(lambda: exact.reference_forward(p)))
        for name, r_ in ablation.items():
            tp = exact.prepare(p)
            times[name].append(timed(lambda: r_.render(tp)))
        times["exact"].append(timed(lambda: exact.render(p)))
        times["fast"].append(timed(lambda: fast.render(p)))
        times["exact_batch"].append(timed(lambda: exact.render(batch)) / len(batch))
        times["fast_batch"].append(timed(lambda: fast.render(batch)) / len(batch))
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {
        "student": str(args.student), "threads": torch.get_num_threads(), "rounds": args.rounds,
        "ms_per_frame_median": med,
        "speedup_vs_baseline": {k: med["baseline"] / v for k, v in med.items() if k != "baseline"},
        "psnr_db": {"exact_vs_official_fixture_min": psnr_fixture, "exact_vs_baseline_min": psnr_exact_vs_base,
                    "fast_vs_exact_min": psnr_fast_vs_exact},
    }
    if args.json:
        print(json.dumps(res, indent=1))
        return
    print(f"student {args.student}  threads {res['threads']}  rounds {args.rounds}  (batch {args.batch})")
    print(f"{'path':<12} {'ms/frame':>9} {'x baseline':>11}  quality")
    print(f"{'baseline':<12} {med['baseline']:9.1f} {1.0:11.2f}  (the plain official forward pass)")
    fx = f"{psnr_fixture:.1f} dB vs official outputs, " if psnr_fixture else ""
    print(f"{'levers 1+2':<12} {med['levers_1_2']:9.1f} {res['speedup_vs_baseline']['levers_1_2']:11.2f}  channels-last GEMMs, reused buffers, first layers without GEMM")
    print(f"{'+ lever 3':<12} {med['levers_1_2_3']:9.1f} {res['speedup_vs_baseline']['levers_1_2_3']:11.2f}  + mix then upsample (low-res first layers)")
    print(f"{'exact':<12} {med['exact']:9.1f} {res['speedup_vs_baseline']['exact']:11.2f}  "
          f"+ lever 4 (bias in GEMM) = all levers, via StudentPoser; {fx}{psnr_exact_vs_base:.1f} dB vs baseline (min)")
    print(f"{'fast':<12} {med['fast']:9.1f} {res['speedup_vs_baseline']['fast']:11.2f}  "
          f"{psnr_fast_vs_exact:.1f} dB vs exact (min over random poses)")
    print(f"{'exact x' + str(args.batch):<12} {med['exact_batch']:9.1f} {res['speedup_vs_baseline']['exact_batch']:11.2f}  per frame, batched")
    print(f"{'fast x' + str(args.batch):<12} {med['fast_batch']:9.1f} {res['speedup_vs_baseline']['fast_batch']:11.2f}  per frame, batched")


if __name__ == "__main__":
    main()

"""Student inference speed and quality: `exact` and `fast` against the straightforward baseline.

The baseline is the official forward pass written plainly (`student.FaceMorpher`/`BodyMorpher`: NCHW 1×1
convolutions, concatenated position/pose inputs, full-resolution level mixing), timed in a clean process of its
own (started first; it holds nothing else) and, for comparison, in this one ("baseline here"), interleaved
round by round with the candidates so that machine noise hits all of them alike. Every ratio is against the
clean figure: the issue-20 runs read 2636 and 3108 ms in the benchmark's process for a forward that takes 1273
ms alone, inflating every ratio; both figures and their minor page faults are printed so that a reader sees
whether they agree. The batch rounds come after the single frames (their buffers hold GBs).

    python benchmarks/bench_student.py [--student DIR] [--rounds 7] [--batch 4] [--json]

Prints ms/frame (median), the speed-up ratio against the baseline, and PSNR: `exact` against the official
outputs in ../shared/fixtures/tha4/reference/lambda_00 (when benchmarking lambda_00) and against the baseline;
`fast` against `exact` on random poses; the 192×192 head crop against the same pixels of the whole frame. Also: the arithmetic `fast` chose and why; `fast` under the
no-bfloat16 caps (a subprocess with ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2); `exact` and `fast`
with and without the visibility mask; the CPU's name, its float32 GEMM rate and the frame's GEMM GFLOP
(the floor: GFLOP / rate).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tha4bridge.imaging import psnr
from tha4bridge.pose import LOWER, NUM_PARAMETERS, UPPER
from tha4bridge.region import Region
from tha4bridge.student import Levers, SirenRenderer, StudentPoser

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "tha4"
HEAD = Region(160, 48, 192, 192)  # the head of a fixture character: what a dialogue box shows


def random_poses(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (LOWER + (UPPER - LOWER) * rng.random((n, NUM_PARAMETERS))).astype(np.float32)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def faulted(fn) -> tuple[float, int]:
    """(ms, minor page faults of this process) of fn()."""
    f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ms = timed(fn)
    return ms, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f


def gemm_gflops(n: int = 16384, k: int = 360, reps: int = 5) -> float:
    """float32 GEMM rate of this machine on a [n, k] × [k, k] product (best of reps), GFLOP/s."""
    a, b = torch.randn(n, k), torch.randn(k, k)
    out = torch.empty(n, k)
    torch.mm(a, b, out=out)
    best = min(timed(lambda: torch.mm(a, b, out=out)) for _ in range(reps))
    return 2 * n * k * k / (best / 1000.0) / 1e9


def frame_gflop(r: SirenRenderer) -> float:
    """Multiply-adds ×2 of one full frame's GEMMs (face, each level's hidden layers and mixing, the last layers)."""
    face = r.face_size ** 2 * (sum(w.numel() for w, _ in r.face_hidden) + r.face_last[0].numel())
    body = 0
    for i, (size, (first, hidden)) in enumerate(zip(r.sizes, r.levels)):
        body += size ** 2 * sum(w.numel() for w, _ in hidden)
        if i:  # the mix runs at the previous level's resolution (lever 3)
            body += r.sizes[i - 1] ** 2 * first.w_feat.numel()
    body += r.sizes[-1] ** 2 * r.body_last[0].numel()
    return 2 * (face + body) / 1e9


_EMULATED = """
import json, statistics, sys, time
import numpy as np, torch
sys.path.insert(0, sys.argv[3])
from bench_student import random_poses, timed
from tha4bridge.imaging import psnr
from tha4bridge.student import StudentPoser
exact, fast = (StudentPoser(sys.argv[1], device="cpu", mode=m) for m in ("exact", "fast"))
fast.renderer.calibrate_mask()  # what serve does on a background thread
poses = random_poses(int(sys.argv[2]) + 1, seed=3)
q = psnr(exact.render(poses[0]).clone()[0], fast.render(poses[0])[0])
ms = statistics.median(timed(lambda: fast.render(p)) for p in poses[1:])
print(json.dumps({"ms": ms, "psnr": q, "arithmetic": fast.describe()["arithmetic"]}))
"""


_CLEAN = """
import json, resource, sys, time
import numpy as np, torch
from tha4bridge.student import StudentPoser
torch.set_num_threads(int(sys.argv[2]))
poser = StudentPoser(sys.argv[1], device="cpu", mode="exact")
poser.reference_forward(np.zeros((1, 45), np.float32))
print("ready", flush=True)
for line in sys.stdin:
    pose = np.asarray(json.loads(line), np.float32)[None]
    f, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    poser.reference_forward(pose)
    ms, f = (time.perf_counter() - t) * 1000.0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f
    print(ms, f, flush=True)
"""


class CleanBaseline:
    """The baseline in a process of its own that holds nothing else (no other renderer, no calibration
    thread): each call times one `reference_forward` there, while this process waits."""

    def __init__(self, student: str, threads: int):
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-c", _CLEAN, student, str(threads)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=root)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the clean baseline process did not start")

    def __call__(self, pose: np.ndarray) -> tuple[float, int]:
        """(ms, minor page faults) of one reference_forward of `pose` there."""
        self.proc.stdin.write(json.dumps([float(v) for v in np.asarray(pose, np.float32).reshape(-1)]) + "\n")
        self.proc.stdin.flush()
        ms, faults = self.proc.stdout.readline().split()
        return float(ms), int(faults)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def emulated_no_bf16(student: str, rounds: int) -> dict:
    """`fast` in a subprocess under the caps a bfloat16 CPU runs with to behave like one without."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", _EMULATED, student, str(rounds), str(Path(__file__).parent)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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


def time_rounds(exact: StudentPoser, fast: StudentPoser, poses: np.ndarray, rounds: int, batch: int,
                clean: CleanBaseline) -> tuple[dict[str, list[float]], dict[str, float]]:
    """ms/frame per path, interleaved round by round so that machine noise hits every path alike; the baseline
    both here and in `clean`, one after the other (and their minor page faults, "*_faults"); the batches
    after the single frames, so that their buffers (GBs) are not held while the baseline runs."""
    # Lever ablation (exact arithmetic): levers 1+2(+4) alone, then + low-res mixing (3) = `exact`'s arrangement.
    ablation = {
        "levers_1_2": SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(),
                                    levers=Levers(low_res_mixing=False)),
        # Lever 7 (off by default): the face and the last level in bands of 2048 pixels.
        "bands": SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(),
                               levers=Levers(band_rows=2048)),
        # The visibility mask: alone (exact arithmetic; off in exact mode) and fast without it (on in fast).
        "exact_mask": SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(), mask=True),
        "fast_no_mask": SirenRenderer(exact.face_morpher, exact.body_morpher, exact.rest_image(), mode="fast"),
    }
    for r_ in (ablation["exact_mask"], fast.renderer):  # what serve does on a background thread, here at once
        r_.calibrate_mask()
    for r_ in ablation.values():  # warm-up; a masked one computes a full frame first
        r_.render(exact.prepare(poses[:1]))
    # Quality of the masked paths against exact (random poses, after warm-up).
    q = {}
    for name in ("exact_mask", "fast_no_mask"):
        q[name] = min(psnr(ablation[name].render(exact.prepare(p[None])).clone()[0], exact.render(p)[0])
                      for p in poses[-3:])

    # The head crop (lever 6) against the same pixels of the whole exact frame: a student of its own, as a
    # stream that shows only the head (sharing one with a whole-frame stream, its face would come for free).
    head = StudentPoser(exact.model.folder, device="cpu", mode="exact")
    head.render(poses[:1], HEAD)
    q["head_crop"] = min(psnr(head.render(p, HEAD).clone()[0], HEAD.cut(exact.render(p))[0]) for p in poses[-3:])

    times: dict[str, list[float]] = {k: [] for k in ("baseline", "baseline_here", *ablation, "exact", "fast",
                                                     "head_crop", "exact_batch", "fast_batch")}
    faults: dict[str, list[int]] = {"baseline": [], "baseline_here": []}
    for r in range(rounds):
        p = poses[r: r + 1]
        for name, run in (("baseline_here", lambda: faulted(lambda: exact.reference_forward(p))),
                          ("baseline", lambda: clean(p))):
            ms, f = run()
            times[name].append(ms)
            faults[name].append(f)
        for name, r_ in ablation.items():
            tp = exact.prepare(p)
            times[name].append(timed(lambda: r_.render(tp)))
        times["exact"].append(timed(lambda: exact.render(p)))
        times["fast"].append(timed(lambda: fast.render(p)))
        times["head_crop"].append(timed(lambda: head.render(p, HEAD)))
    exact.render(poses[:batch]), fast.render(poses[:batch])  # warm-up: the batch buffers
    for r in range(rounds):
        b = poses[r + 1: r + 1 + batch]  # new poses every round: an unchanged face would be reused (lever 8)
        times["exact_batch"].append(timed(lambda: exact.render(b)) / len(b))
        times["fast_batch"].append(timed(lambda: fast.render(b)) / len(b))
    times.update({f"{k}_faults": v for k, v in faults.items()})
    return times, q


def print_table(res: dict, batch: int) -> None:
    med, up, q = res["ms_per_frame_median"], res["speedup_vs_baseline"], res["psnr_db"]
    print(f"student {res['student']}  threads {res['threads']}  rounds {res['rounds']}  (batch {batch})  "
          f"other busy processes {res['busy']}")
    print(f"{'path':<12} {'ms/frame':>9} {'x baseline':>11}  quality")
    print(f"{'baseline':<12} {med['baseline']:9.1f} {1.0:11.2f}  the plain official forward pass (reference_forward), "
          f"timed in a clean process of its own; every ratio is against it")
    print(f"{'baseline here':<12} {med['baseline_here']:9.1f} {up['baseline_here']:11.2f}  the same in this process "
          f"beside the other renderers, alternating with it: {med['baseline_here'] / med['baseline']:.2f}x the clean "
          f"figure; minor page faults per call {med['baseline_here_faults']:,.0f} here, {med['baseline_faults']:,.0f} clean")
    fixture = q["exact_vs_official_fixture_min"]
    fx = f"{fixture:.1f} dB vs official outputs, " if fixture else ""
    print(f"{'levers 1+2+4':<12} {med['levers_1_2']:9.1f} {up['levers_1_2']:11.2f}  channels-last GEMMs, reused buffers, first layers without GEMM, bias in the GEMM")
    print(f"{'exact':<12} {med['exact']:9.1f} {up['exact']:11.2f}  "
          f"+ lever 3 (mix then upsample) = all levers, via StudentPoser; {fx}{q['exact_vs_baseline_min']:.1f} dB vs baseline (min)")
    print(f"{'fast':<12} {med['fast']:9.1f} {up['fast']:11.2f}  "
          f"arithmetic below + the visibility mask; {q['fast_vs_exact_min']:.1f} dB vs exact (min over random poses)")
    print(f"{'exact+mask':<12} {med['exact_mask']:9.1f} {up['exact_mask']:11.2f}  "
          f"visibility mask alone; {q['exact_mask']:.1f} dB vs exact (min)")
    print(f"{'fast-mask':<12} {med['fast_no_mask']:9.1f} {up['fast_no_mask']:11.2f}  "
          f"fast without the mask; {q['fast_no_mask']:.1f} dB vs exact (min)")
    if "fast_no_bf16" in med:
        print(f"{'fast no-bf16':<12} {med['fast_no_bf16']:9.1f} {up['fast_no_bf16']:11.2f}  "
              f"subprocess under ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2; {q['fast_no_bf16']:.1f} dB vs "
              f"exact; chose {res['emulated_arithmetic']}")
    print(f"{'lever 7 bands':<12} {med['bands']:9.1f} {up['bands']:11.2f}  "
          f"exact with the face and the 512 level in bands of 2048 pixels ({med['bands'] / med['exact']:.2f}x exact's time)")
    print(f"{'head crop':<12} {med['head_crop']:9.1f} {up['head_crop']:11.2f}  exact, region {HEAD}: "
          f"{med['exact'] / med['head_crop']:.2f}x faster than a whole exact frame; "
          f"{q['head_crop']:.1f} dB vs the whole frame's pixels (min)")
    print(f"{'exact x' + str(batch):<12} {med['exact_batch']:9.1f} {up['exact_batch']:11.2f}  per frame, batched")
    print(f"{'fast x' + str(batch):<12} {med['fast_batch']:9.1f} {up['fast_batch']:11.2f}  per frame, batched")
    print(f"cpu {res['cpu']}; fast chose {res['fast_arithmetic']}")
    print(f"float32 GEMM {res['gemm_gflops']:.0f} GFLOP/s; a frame is {res['frame_gflop']:.1f} GFLOP of GEMM: "
          f"floor {res['floor_ms']:.0f} ms; exact reaches {res['floor_ms'] / med['exact']:.0%} of it, "
          f"fast {res['floor_ms'] / med['fast']:.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default=str(FIXTURES / "students" / "lambda_00"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=4, help="batch size for the per-frame batch figure")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-emulation", action="store_true", help="skip the no-bfloat16 subprocess")
    ap.add_argument("--busy", type=int, default=0,
                    help="keep this many other processes busy (a Python loop each) while timing: a streamer's "
                         "machine runs OBS and a game beside the daemon")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    clean = CleanBaseline(args.student, torch.get_num_threads())  # started before this process holds anything
    exact = StudentPoser(args.student, device="cpu", mode="exact")
    fast = StudentPoser(args.student, device="cpu", mode="fast")
    poses = random_poses(args.rounds + 8)
    psnr_db = quality(exact, fast, poses[-8:], args.student)  # quality first: it also warms every path up
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        times, q_alone = time_rounds(exact, fast, poses, args.rounds, args.batch, clean)
    finally:
        clean.close()
        for h in hogs:
            h.kill()
    psnr_db.update(q_alone)
    med = {k: statistics.median(v) for k, v in times.items()}
    emu = emulated_no_bf16(args.student, args.rounds) if not args.no_emulation else None
    if emu:
        med["fast_no_bf16"] = emu["ms"]
        psnr_db["fast_no_bf16"] = emu["psnr"]
    caps = torch.cpu.get_capabilities()
    rate, gflop = gemm_gflops(), frame_gflop(exact.renderer)
    res = {
        "cpu": caps.get("cpu_name") or caps.get("architecture"), "gemm_gflops": rate, "frame_gflop": gflop,
        "floor_ms": gflop / rate * 1000.0, "fast_arithmetic": fast.describe()["arithmetic"],
        "emulated_arithmetic": emu["arithmetic"] if emu else None,
        "student": str(args.student), "threads": torch.get_num_threads(), "rounds": args.rounds, "busy": args.busy,
        "ms_per_frame_median": med,
        "speedup_vs_baseline": {k: med["baseline"] / v for k, v in med.items()
                                if k != "baseline" and not k.endswith("_faults")},
        "psnr_db": psnr_db,
    }
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print_table(res, args.batch)


if __name__ == "__main__":
    main()

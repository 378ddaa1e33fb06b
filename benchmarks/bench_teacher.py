"""Teacher forward time per frame: the straightforward baseline against the distiller's faster modes.

    python benchmarks/bench_teacher.py [--frames 3]

Baseline: the official way of running it — NCHW float32 under no_grad, one pose at a time, the eyebrow
decomposer cached (the official poser caches it too): our `exact` mode, which reproduces the official outputs.
Candidate: `bf16` (channels-last + bfloat16 autocast for convolutions and matmuls; it pays off only with AMX, on
recent Xeons; warps in float32), under inference_mode. Quality: PSNR of each mode's final image against the baseline.
Also: a batch of 8 poses (what a training step asks for) in one pass against the TeacherPoser's one pose per pass.

Weights: the deterministic synthetic weights of ../shared/fixtures/tha4/reference/teacher_synthetic when present
(else random He init). Caveat printed with the result: random weights predict huge warps that amplify rounding, so
PSNRs between arithmetics are far lower than with trained weights (float32 vs float64 of the same code: ~52 dB).
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch

from distiller.teacher.teacher import Teacher, TeacherPoser
from tha4bridge.demo import DemoPoser
from tha4bridge.imaging import load_character_png, psnr
from tha4bridge.pose import NUM_PARAMETERS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "tha4"
SYNTHETIC = SHARED / "reference" / "teacher_synthetic"


def teacher_and_image():
    teacher = Teacher()
    if (SYNTHETIC / "make_weights.py").is_file():
        spec = importlib.util.spec_from_file_location("make_weights", SYNTHETIC / "make_weights.py")
        mw = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mw)
        teacher.load_state_dicts(mw.synthetic_state_dicts())
        return teacher, load_character_png(SHARED / "students" / "lambda_00" / "character.png"), "synthetic"
    return teacher, DemoPoser(device="cpu").rest_image(), "random He init"


def time_mode(teacher, image, mode: str, poses: torch.Tensor) -> tuple[float, torch.Tensor]:
    poser = TeacherPoser(teacher, image, mode=mode)
    if mode == "exact":  # the baseline: no_grad rather than inference_mode, as the official code
        def run(p):
            with torch.no_grad():
                return poser.teacher(poser._batch_image(1), p, poser._decomposition(1)).final
    else:
        def run(p):
            return poser.outputs(p).final
    run(poses[:1])  # warm-up (and the cached eyebrow decomposition)
    outs, start = [], time.perf_counter()
    for i in range(len(poses)):
        outs.append(run(poses[i:i + 1]).float().clone())
    return (time.perf_counter() - start) / len(poses), torch.cat(outs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=3)
    args = ap.parse_args()
    teacher, image, weights = teacher_and_image()
    poses = torch.from_numpy(np.load(SYNTHETIC / "poses.npy")) if (SYNTHETIC / "poses.npy").is_file() else \
        torch.rand(3, NUM_PARAMETERS)
    poses = poses.repeat((args.frames + len(poses) - 1) // len(poses), 1)[:args.frames]
    print(f"teacher forward, batch 1, {args.frames} frames, {torch.get_num_threads()} threads, weights: {weights}")
    base_t, base = time_mode(teacher, image, "exact", poses)
    print(f"  baseline (exact, NCHW fp32, no_grad): {base_t:.2f} s/frame")
    for mode in ("bf16",):
        t, out = time_mode(teacher, image, mode, poses)
        q = min(psnr(out[i], base[i]) for i in range(len(out)))
        print(f"  {mode:5s}: {t:.2f} s/frame  ratio {t / base_t:.2f} of baseline  "
              f"final image vs baseline {q:.1f} dB (min over frames)")
    poser, eight = TeacherPoser(teacher, image, mode="exact"), torch.rand(8, NUM_PARAMETERS)
    poser.outputs(eight[:1])
    per_frame = {}
    for chunk in (8, 1):
        poser.chunk = chunk
        start = time.perf_counter()
        poser.outputs(eight)
        per_frame[chunk] = (time.perf_counter() - start) / 8
    print(f"  8 poses (exact): one pass {per_frame[8]:.2f} s/frame, one pose per pass {per_frame[1]:.2f} s/frame "
          f"(ratio {per_frame[1] / per_frame[8]:.2f}; the CPU default)")
    print("  note: random weights amplify rounding (warps of ~0.6 half-widths); trained weights do not.")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()

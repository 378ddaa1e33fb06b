"""Distillation speed: student training step per example against a straightforward baseline, examples/s of the
`quick` budget, and the projected wall time of the `paper` budget here and on a GPU (from FLOP counts).

    python benchmarks/bench_distill.py [--repeats 2]

Baseline step: the student modules' own forward (1x1 convolutions on NCHW maps, as the official code), the official
loss, backward and an Adam step, batch 1 (the issue's reference: ~3.1 s per example for the body morpher).
Candidate: distiller.student_train (pixel-major GEMMs, split first layers, low-resolution mixing, ω0 folded).
Quality: PSNR and the largest difference between the two forwards' outputs. The batch-8 body step is also timed in
fresh processes with large tensors on 4 KB pages and on transparent huge pages (the distiller's default).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from distiller.config import BUDGETS, PAPER_BODY_EXAMPLES, PAPER_FACE_EXAMPLES
from distiller.losses import body_loss, face_loss
from distiller.student_train import TrainableBody, TrainableFace
from distiller.targets import BodyTargets, make_targets
from distiller.teacher.teacher import TeacherPoser
from tha4bridge.demo import demo_face_mask
from tha4bridge.imaging import psnr
from tha4bridge.pose import NUM_PARAMETERS
from tha4bridge.student import BodyMorpher, FaceMorpher

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_teacher import teacher_and_image  # noqa: E402

WEIGHTS = dict(blended=0.25, warped=0.25, grid_change=0.5, color_change=2.0)
# GPU model for the projection: RTX A6000 (the paper's card), 38.7 TFLOP/s float32, 155 TFLOP/s bf16 tensor cores.
# Assumed achieved fractions: 25% for the SIRENs (sin and elementwise traffic dominate), 40% for the conv nets.
GPU = {"name": "RTX A6000", "fp32": 38.7e12, "bf16": 155e12, "siren_eff": 0.25, "conv_eff": 0.40}


def step_face(forward, params, pose, target, mask):
    opt = torch.optim.Adam(params, lr=1e-4)
    loss, _ = face_loss(forward(pose), target, mask)
    opt.zero_grad()
    loss.backward()
    opt.step()


def step_body(forward, params, image, pose, t):
    opt = torch.optim.Adam(params, lr=1e-4)
    loss, _ = body_loss(forward(image, pose), t, WEIGHTS)
    opt.zero_grad()
    loss.backward()
    opt.step()


def _body8_in_subprocess(thp: str) -> float:
    """Best of 3 batch-8 body steps in a fresh process with THP_MEM_ALLOC_ENABLE=thp (read once, at start)."""
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": thp, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    out = subprocess.run([sys.executable, "-c", "from bench_distill import body8_step; print(body8_step())"],
                         env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def body8_step(repeats: int = 3) -> float:
    """Seconds for one batch-8 step of the official-size body student, demo-teacher targets included (best of N)."""
    torch.manual_seed(0)
    body, demo, poses8 = BodyMorpher(), make_targets("demo", "", "cpu"), torch.rand(8, NUM_PARAMETERS)

    def step():
        bt = demo.body(poses8)
        step_body(TrainableBody(body), body.parameters(), bt.input, poses8, bt)

    return timed(step, repeats)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    pose = torch.rand(1, NUM_PARAMETERS) * 2 - 1
    image = F.interpolate(torch.rand(1, 4, 16, 16) * 2 - 1, size=(512, 512), mode="bilinear")
    mask = demo_face_mask()[None]

    print(f"student training step, batch 1, {torch.get_num_threads()} threads, official sizes")
    face = FaceMorpher()
    target = torch.rand(1, 4, 128, 128) * 2 - 1
    base_f = timed(lambda: step_face(face, face.parameters(), pose, target, mask), args.repeats)
    fast_f = timed(lambda: step_face(TrainableFace(face), face.parameters(), pose, target, mask), args.repeats)
    with torch.no_grad():
        a, b = face(pose), TrainableFace(face)(pose)
    print(f"  face morpher: baseline {base_f:.3f} s/example, ours {fast_f:.3f} s/example, ratio "
          f"{fast_f / base_f:.2f}; forward PSNR {psnr(b, a):.1f} dB, max |Δ| {(a - b).abs().max().item():.1e}")

    body = BodyMorpher()
    t = BodyTargets(image, torch.rand(1, 4, 512, 512) * 2 - 1, torch.rand(1, 4, 512, 512) * 2 - 1,
                    torch.zeros(1, 2, 512, 512))
    base_b = timed(lambda: step_body(body, body.parameters(), image, pose, t), args.repeats)
    fast_b = timed(lambda: step_body(TrainableBody(body), body.parameters(), image, pose, t), args.repeats)
    with torch.no_grad():
        a, b = body(image, pose), TrainableBody(body)(image, pose)
    diff_b = max((x - y).abs().max().item() for x, y in zip(a, b))
    print(f"  body morpher: baseline {base_b:.3f} s/example, ours {fast_b:.3f} s/example, ratio "
          f"{fast_b / base_b:.2f}; forward PSNR {psnr(b[0], a[0]):.1f} dB (blended), max |Δ| {diff_b:.1e}")

    # quick: one real batch-8 step of each stage from the demo teacher (targets included).
    demo = make_targets("demo", "", "cpu")
    poses8 = torch.rand(8, NUM_PARAMETERS)
    quick_face = timed(lambda: step_face(TrainableFace(face), face.parameters(), poses8, demo.face(poses8), mask), 1) / 8
    quick_body = body8_step(1) / 8
    pages = {value: _body8_in_subprocess(value) for value in ("0", "1")}
    print(f"batch-8 body step (demo teacher), large tensors on 4 KB pages {pages['0']:.1f} s, on transparent huge "
          f"pages {pages['1']:.1f} s (the distiller's default): ratio {pages['1'] / pages['0']:.2f}")
    qf, qb = BUDGETS["quick"]
    print(f"quick budget ({qf} face + {qb} body examples, demo teacher, batch 8): face {1 / quick_face:.2f} "
          f"examples/s, body {1 / quick_body:.2f} examples/s → about {(qf * quick_face + qb * quick_body) / 60:.1f} "
          f"min plus validation")

    # paper: the THA4 teacher's cost per example on top of the student's (the fixture's synthetic weights).
    teacher, img, _ = teacher_and_image()
    per = {}
    for mode in ("exact", "bf16"):
        tp = TeacherPoser(teacher, img, mode=mode)
        per[mode] = (timed(lambda: tp.face_outputs(pose), 1), timed(lambda: tp.outputs(pose), 1))
    for mode, (tf, tb) in per.items():
        hours = (PAPER_FACE_EXAMPLES * (fast_f + tf) + PAPER_BODY_EXAMPLES * (fast_b + tb)) / 3600
        print(f"paper budget on this machine, teacher {mode}: face {fast_f + tf:.2f} s/ex, body {fast_b + tb:.2f} "
              f"s/ex → {hours:,.0f} h ({hours / 24:,.0f} days)")

    # GPU projection from FLOP counts (matmuls and convolutions; elementwise work is folded into the efficiency).
    tp = TeacherPoser(teacher, img, mode="exact")
    f_face = flops(lambda: step_face(TrainableFace(face), face.parameters(), pose, target, mask))
    f_body = flops(lambda: step_body(TrainableBody(body), body.parameters(), image, pose, t))
    f_tface = flops(lambda: tp.teacher.face_outputs(tp._batch_image(1), pose, tp._decomposition(1)))
    f_tfull = flops(lambda: tp.teacher(tp._batch_image(1), pose, tp._decomposition(1)))
    siren = GPU["fp32"] * GPU["siren_eff"]
    print(f"FLOPs per example: student face step {f_face / 1e9:.1f} G, body step {f_body / 1e9:.1f} G; teacher "
          f"face part {f_tface / 1e9:.1f} G, full {f_tfull / 1e9:.1f} G")
    for precision in ("fp32", "bf16"):
        conv = GPU[precision] * GPU["conv_eff"]
        gpu_s = (PAPER_FACE_EXAMPLES * (f_face / siren + f_tface / conv)
                 + PAPER_BODY_EXAMPLES * (f_body / siren + f_tfull / conv))
        print(f"paper budget on one {GPU['name']} (students fp32 at {GPU['siren_eff']:.0%} of peak, teacher "
              f"{precision} at {GPU['conv_eff']:.0%}): about {gpu_s / 3600:.0f} h (the official code reports ~30 h)")


if __name__ == "__main__":
    main()

"""Warm start against from scratch: validation PSNR against examples for a new character (not a timed test).

    nice -n 15 python benchmarks/bench_transfer.py [--face 160] [--body 64] [--batch 4] [--threads 1] [--parallel]

Teacher: the official `lambda_01` student (a student folder is a valid teacher), its character.png and face mask.
Two arms with the same example budget, batch and seed:
  (a) from scratch with today's recipe (random SIREN weights, the paper's schedules scaled to the budget);
  (b) `--init-from lambda_00` with the fine-tuning recipe (distiller/config.py WARM_*_PHASES, distiller/warm.py).
For each: validation PSNR of the face crop, the body morpher (on the teacher's input) and the whole frame (the
student's own face, then its body) on the same fixed poses, at every validation; the examples each arm needs to
reach 25 and 30 dB on the body; the examples (b) needs to reach (a)'s final body PSNR, as a fraction of (a)'s.
The default budget is about 12 minutes of one thread's work (both arms); with --parallel (the two arms as two
one-thread processes), niced on a 2-core CPU that other people kept busy (load 10-17), it took 30 minutes.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.machine import cpu_name  # noqa: E402
from distiller.config import DistillConfig  # noqa: E402
from distiller.train import build  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures" / "tha4"
TEACHER, START = FIXTURES / "students" / "lambda_01", FIXTURES / "students" / "lambda_00"
MASK = FIXTURES / "images" / "lambda_01_face_mask.png"
# The paper's run: 1M face + 1.5M body examples in about 30 hours on one RTX A6000 (official README), so about
# 43 ms per example averaged over both stages. Used only to turn example counts into GPU time.
PAPER_GPU_S_PER_EXAMPLE = 30 * 3600 / 2.5e6
ARMS = {"a": "a_scratch", "b": "b_warm"}


def rows(out: Path, stage: str) -> list[dict]:
    with open(out / "distill" / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["stage"] == stage]


def first_at(series: list[tuple[int, float]], db: float) -> int | None:
    return next((ex for ex, v in series if v >= db), None)


def run_arm(name: str, work: Path, args, init_from: str) -> None:
    cfg = DistillConfig(teacher=str(TEACHER), image=str(TEACHER / "character.png"), face_mask=str(MASK),
                        face_examples=args.face, body_examples=args.body, batch_size=args.batch, seed=args.seed,
                        sample_every=args.every, validation_poses=args.poses, checkpoint_every=10 ** 9,
                        init_from=init_from)
    out = work / name
    start = time.monotonic()
    build(cfg, out, device="cpu", progress=False, log=lambda *a, **k: print(f"  [{name}]", *a, flush=True))
    (out / "wall_s.txt").write_text(f"{time.monotonic() - start}\n")


def read_arm(name: str, work: Path) -> dict:
    out = work / name
    face, body = rows(out, "face"), rows(out, "body")
    return dict(name=name, seconds=float((out / "wall_s.txt").read_text()),
                face=[(int(r["examples"]), float(r["val_psnr"])) for r in face],
                body=[(int(r["examples"]), float(r["val_body_psnr"])) for r in body],
                whole=[(int(r["examples"]), float(r["val_psnr"])) for r in body],
                face_s=float(body[0]["elapsed_s"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--face", type=int, default=160, help="face examples per arm")
    ap.add_argument("--body", type=int, default=64, help="body examples per arm")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--poses", type=int, default=8, help="validation poses")
    ap.add_argument("--every", type=int, default=0, help="examples between validations (0: a tenth of each stage)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="write the two students here (default: a temp dir)")
    ap.add_argument("--parallel", action="store_true", help="the two arms at once, as two processes")
    ap.add_argument("--arm", choices=("a", "b"), help=argparse.SUPPRESS)  # one arm into --keep (used by --parallel)
    args = ap.parse_args()
    if not TEACHER.is_dir():
        sys.exit(f"bench_transfer: {FIXTURES} is absent (the shared fixtures hold the lambda_00/01 students)")
    torch.set_num_threads(args.threads)
    if args.arm:
        run_arm(ARMS[args.arm], args.keep, args, str(START) if args.arm == "b" else "")
        return
    print(f"CPU: {cpu_name()}, {os.cpu_count()} CPUs; torch {torch.__version__}, {args.threads} thread(s)")
    print(f"teacher {TEACHER.name}, budget {args.face} face + {args.body} body examples per arm, batch {args.batch}, "
          f"seed {args.seed}, {args.poses} validation poses")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        if args.parallel:
            common = [sys.executable, __file__, "--keep", str(work)] + [
                f"--{k}={getattr(args, k)}" for k in ("face", "body", "batch", "poses", "every", "threads", "seed")]
            procs = [subprocess.Popen(common + ["--arm", x]) for x in ARMS]
            if any(p.wait() != 0 for p in procs):
                sys.exit("bench_transfer: an arm failed (its output is above)")
        else:
            run_arm(ARMS["a"], work, args, "")
            run_arm(ARMS["b"], work, args, str(START))
        a, b = read_arm(ARMS["a"], work), read_arm(ARMS["b"], work)

    print("\nvalidation PSNR (dB) against examples; body = the body morpher on the teacher's input, whole = the "
          "student's own face then its body")
    for stage, keys in (("face", ("face",)), ("body", ("body", "whole"))):
        print(f"  {stage} stage: examples | " + " | ".join(f"(a) {k}  (b) {k}" for k in keys))
        for i, (ex, _) in enumerate(a[keys[0]]):
            cells = " | ".join(f"{a[k][i][1]:7.2f} {b[k][i][1]:7.2f}" for k in keys)
            print(f"    {ex:6d} | {cells}")
    print("\nbody milestones (examples in the body stage; best if not reached)")
    for r in (a, b):
        hits = []
        for db in (25.0, 30.0):
            ex = first_at(r["body"], db)
            hits.append(f"{db:.0f} dB at {ex}" if ex is not None else f"{db:.0f} dB not reached")
        best = max(v for _, v in r["body"])
        print(f"  ({r['name'][0]}) {r['name']}: " + ", ".join(hits) + f"; best {best:.2f} dB; wall {r['seconds'] / 60:.1f}"
              f" min ({r['face_s'] / 60:.1f} of it the face stage)")
    target = a["body"][-1][1]
    need = first_at(b["body"], target)
    if need is None:
        print(f"(b) never reached (a)'s final body PSNR {target:.2f} dB in {args.body} examples")
    else:
        print(f"(b) reaches (a)'s final body PSNR {target:.2f} dB at {need} examples: ratio {need / args.body:.3f} of "
              f"(a)'s {args.body} (goal <= 0.2)")
    print(f"final PSNR (face / body / whole frame): (a) {a['face'][-1][1]:.2f} / {a['body'][-1][1]:.2f} / "
          f"{a['whole'][-1][1]:.2f} dB, (b) {b['face'][-1][1]:.2f} / {b['body'][-1][1]:.2f} / {b['whole'][-1][1]:.2f}"
          f" dB; wall ratio (b)/(a) {b['seconds'] / a['seconds']:.2f}")
    spent = args.face + args.body
    print(f"on the paper's GPU (about {PAPER_GPU_S_PER_EXAMPLE * 1000:.0f} ms per example, from 30 h for 2.5M "
          f"examples on one RTX A6000) this budget of {spent} examples is about {spent * PAPER_GPU_S_PER_EXAMPLE:.0f} s")


if __name__ == "__main__":
    main()

"""A compose pass while talking (the face changes every frame), before and after issue 20's item 4.

    python benchmarks/bench_compose.py [--student DIR] [--threads 1 2] [--frames 20]

The body outputs are an interpolation of three body passes, as the two-rate daemon makes them
(y = A + s·(B − A) + c·D). Rows, each timed interleaved with the others (median ms per compose pass):
- before: the whole face, the combination in plain ops, the paste, torch.add grid, grid_sample, sub/mul/add;
- face mask: the same with the face mask's pixels only (`face_mask.py`);
- fused: the whole face, `compose_pass(mix=...)` (one buffer for the combination, the grid into a reused
  buffer, the blend as one lerp);
- after: both (what `compose_pass` does in fast mode); and the compose work alone (no face) before/after.
PSNR: each row's frames against `before`'s, over all channels (tha4bridge.imaging.psnr), min over frames.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_name  # noqa: E402
from tha4bridge.imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS, psnr  # noqa: E402
from tha4bridge.pose import INDEX, MOUTH  # noqa: E402
from tha4bridge.student import StudentPoser  # noqa: E402
from tha4bridge.student.arithmetic import cpu_bf16_native  # noqa: E402
from tha4bridge.student.face_mask import tracker_like_poses  # noqa: E402
from tha4bridge.student.network import ALPHA, COLOR_CHANGE, GRID_CHANGE  # noqa: E402


def talking(n: int) -> torch.Tensor:
    """n poses of one tracker-like expression with the mouth moving every frame (visemes)."""
    base = tracker_like_poses(1, 2024)[0]
    rng = np.random.default_rng(5)
    poses = np.tile(base, (n, 1))
    poses[:, MOUTH] = 0.0
    for k in range(n):
        poses[k, INDEX["mouth_aaa"] + int(rng.integers(5))] = rng.random()
    return torch.from_numpy(poses)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default=str(ROOT.parent / "shared/fixtures/tha4/students/lambda_00"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    poser = StudentPoser(args.student, device="cpu", mode="fast")
    r = poser.renderer
    native, why = cpu_bf16_native()
    print(f"CPU: {cpu_name()} ({torch.get_num_threads()} torch threads available); native bfloat16: {native} ({why})")
    print(f"student: {Path(args.student).name}, fast mode, arithmetic {r.arithmetic_line()}")
    t = time.perf_counter()
    r.calibrate_face_mask()
    fm = r.face_mask
    print(f"face mask: {fm.keep.sum()} of {fm.keep.numel()} pixels ({100 * fm.fraction():.1f} %) computed per face; "
          f"calibrated in {time.perf_counter() - t:.1f} s")

    poses = talking(args.frames)
    with torch.inference_mode():
        # Two body passes (whole frames; r.body, not body_pass: no visibility-mask calibration thread in the timing).
        a, b = (r.body(torch.from_numpy(tracker_like_poses(2, 11)[k:k + 1]), {}).clone() for k in range(2))
        d = (b - a) * 0.5
    s, c = 0.4, 0.25
    mix = [(a, 1.0 - s), (b, s), (d, c)]
    base_grid = r.base_grid
    image0 = r.image[None].clone()
    win = r._wins(None)[-1]

    def before(pose, masked=False, face=True):
        """The pre-item-4 compose pass, spelled out (the whole face unless `masked`)."""
        y = a + s * (b - a) + c * d
        image = image0
        if face:
            f = r.face(pose, bufs["x"], masked=masked).permute(0, 3, 1, 2)
            image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = f
        grid = torch.add(y[..., GRID_CHANGE], base_grid)
        warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        warped = warped.permute(0, 2, 3, 1)
        out = bufs["x"].setdefault("blend", torch.empty(1, 512, 512, 4))
        torch.sub(y[..., COLOR_CHANGE], warped, out=out)
        return out.mul_(y[..., ALPHA]).add_(warped).permute(0, 3, 1, 2)

    def fused(pose, masked=True, face=True):
        if not face:
            buf = bufs["y"]
            return r.compose(image0, r._mixed(mix, buf), win, buf).permute(0, 3, 1, 2)
        if masked:
            return r.compose_pass(pose, None, mix=mix)
        f = r.face(pose, bufs["y"]).permute(0, 3, 1, 2)
        image = bufs["y"].setdefault("image", image0.clone())
        image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = f
        return r.compose(image, r._mixed(mix, bufs["y"]), win, bufs["y"]).permute(0, 3, 1, 2)

    rows = {
        "before (whole face, unfused)": lambda p: before(p),
        "face mask only": lambda p: before(p, masked=True),
        "fused compose only": lambda p: fused(p, masked=False),
        "after (face mask + fused)": lambda p: fused(p),
        "compose work alone, before": lambda p: before(p, face=False),
        "compose work alone, after": lambda p: fused(p, face=False),
    }
    for threads in args.threads:
        torch.set_num_threads(threads)
        bufs = {"x": {}, "y": {}}
        ms = {k: [] for k in rows}
        worst = {k: float("inf") for k in rows}
        with torch.inference_mode():
            for _ in range(args.rounds):
                for i, p in enumerate(poses):
                    ref = None
                    for name, f in rows.items():
                        t = time.perf_counter()
                        out = f(p[None])
                        ms[name].append((time.perf_counter() - t) * 1000.0)
                        if name.startswith("compose work"):
                            continue
                        if ref is None:
                            ref = out.clone()
                        else:
                            worst[name] = min(worst[name], psnr(out[0], ref[0]))
        print(f"\n{threads} torch thread(s), {args.frames} talking frames × {args.rounds} rounds, median ms:")
        base = statistics.median(ms["before (whole face, unfused)"])
        base_c = statistics.median(ms["compose work alone, before"])
        for name in rows:
            m = statistics.median(ms[name])
            ref_ms = base_c if name.startswith("compose work") else base
            db = "" if name.startswith(("before", "compose work")) else f"  min PSNR vs before {worst[name]:.1f} dB"
            print(f"  {name:30s} {m:7.1f} ms  ({ref_ms / m:4.2f}x){db}")


if __name__ == "__main__":
    main()

"""ONNX Runtime against our torch renderer, one frame at a time, all in one process.

Candidates, interleaved round by round so that machine noise hits all of them alike:

* ort ours      our rearranged export (tha4bridge.onnx.graph.RearrangedStudent), CPU provider, float32
* ort ours fp16 the same with --fp16 (only with --fp16: the CPU provider has few float16 kernels)
* ort plain     a plain export of the reference modules (the official graph, traced as it is)
* ort -LEVER    our export with one rearrangement switched off (graph.GraphLevers): what each one buys
* torch exact / torch fast   our SirenRenderer

    python benchmarks/bench_onnx.py [--student DIR] [--rounds 5] [--threads N] [--fp16] [--json]

Prints ms/frame (median over rounds) and PSNR of each candidate against torch exact on the same poses.
The browser (onnxruntime-web) is not measured here: the in-browser page is not built yet.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tha4bridge.imaging import psnr
from tha4bridge.onnx.backend import OnnxPoser
from tha4bridge.onnx.export import export
from tha4bridge.onnx.graph import GraphLevers
from tha4bridge.pose import LOWER, NUM_PARAMETERS, UPPER
from tha4bridge.student import StudentPoser

STUDENT = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "tha4" / "students" / "lambda_00"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default=str(STUDENT))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="for torch and ORT alike")
    ap.add_argument("--fp16", action="store_true", help="also time the --fp16 export")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    poses = (LOWER + (UPPER - LOWER) * rng.random((a.rounds + 1, NUM_PARAMETERS))).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        files = {"ort ours": export(a.student, Path(tmp) / "ours.onnx"),
                 "ort plain": export(a.student, Path(tmp) / "plain.onnx", plain=True)}
        for f in dataclasses.fields(GraphLevers):
            files[f"ort -{f.name}"] = export(a.student, Path(tmp) / f"no_{f.name}.onnx",
                                             levers=GraphLevers(**{f.name: False}))
        if a.fp16:
            files["ort ours fp16"] = export(a.student, Path(tmp) / "fp16.onnx", fp16=True)
        posers = {k: OnnxPoser(f, providers="cpu", threads=a.threads) for k, f in files.items()}
        posers["torch exact"] = StudentPoser(a.student, device="cpu", mode="exact")
        posers["torch fast"] = StudentPoser(a.student, device="cpu", mode="fast")
        sizes = {k: f.stat().st_size for k, f in files.items()}

        exact = posers["torch exact"].render(poses[0]).clone()  # round 0 warms everyone up and gives PSNR
        quality = {k: psnr(p.render(poses[0]), exact) for k, p in posers.items()}
        times: dict[str, list[float]] = {k: [] for k in posers}
        for pose in poses[1:]:
            for k, p in posers.items():
                t = time.perf_counter()
                p.render(pose)
                times[k].append((time.perf_counter() - t) * 1000.0)

    rows = {k: {"ms_per_frame": statistics.median(v), "psnr_vs_torch_exact": quality[k],
                "file_mib": sizes[k] / 2**20 if k in sizes else None} for k, v in times.items()}
    if a.json:
        print(json.dumps({"threads": a.threads, "rounds": a.rounds, "rows": rows}))
        return
    base = rows["torch exact"]["ms_per_frame"]
    print(f"{Path(a.student).name}, {a.threads} threads, median of {a.rounds} rounds (one frame each)")
    for k, r in rows.items():
        size = f"{r['file_mib']:.1f} MiB" if r["file_mib"] is not None else ""
        q = "exact" if k == "torch exact" else f"{r['psnr_vs_torch_exact']:.1f} dB"
        print(f"  {k:<22} {r['ms_per_frame']:8.1f} ms/frame  ×{base / r['ms_per_frame']:.2f} vs torch exact  "
              f"{q:>9}  {size}")


if __name__ == "__main__":
    main()

"""ONNX Runtime against our torch renderer, one frame at a time, all in one process.

Candidates, interleaved round by round so that machine noise hits all of them alike:

* ort ours      our rearranged export (tha4bridge.onnx.graph.RearrangedStudent), CPU provider, float32
* ort ours fp16 the same with --fp16 (only with --fp16: the CPU provider has few float16 kernels)
* ort plain     a plain export of the reference modules (the official graph, traced as it is)
* ort -LEVER    our export with one rearrangement switched off (graph.GraphLevers): what each one buys
* torch exact / torch fast   our SirenRenderer
* browser wasm  the /local/ page in headless Chromium: onnxruntime-web's WASM backend on our export, served by
                a daemon (`serve --http --ort-web`); its own `session.run` + conversion time, after the ORT
                rows (never at the same time: they would share the cores). Skipped, with the reason, where
                chromium, chromium-driver, selenium or npm (onnxruntime-web from the registry) is missing.

    python benchmarks/bench_onnx.py [--student DIR] [--rounds 5] [--threads N] [--fp16] [--no-browser] [--json]

Prints ms/frame (median over rounds) and PSNR of each candidate against torch exact on the same poses (the
browser's from its canvas: premultiplied RGBA8 against ours, see tests/web/test_local_page.py), and the CPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import sys

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tha4bridge.imaging import psnr, to_rgba8  # noqa: E402
from tha4bridge.onnx.backend import OnnxPoser  # noqa: E402
from tha4bridge.onnx.export import export  # noqa: E402
from tha4bridge.onnx.graph import GraphLevers  # noqa: E402
from tha4bridge.pose import LOWER, NUM_PARAMETERS, UPPER  # noqa: E402
from tha4bridge.student import StudentPoser  # noqa: E402
from tha4bridge.web.ortweb import ORT_WEB_VERSION  # noqa: E402

STUDENT = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "tha4" / "students" / "lambda_00"


def browser_wasm(student: str, poses: np.ndarray, exact_first: torch.Tensor) -> dict:
    """The /local/ page's WASM ms/frame (median over poses[1:]) and its canvas PSNR for poses[0]."""
    from tests.web.browser_runtime import Unavailable, canvas_rgba8, chromium, ort_web_dist, premultiply, wait
    from tests.web.util import WebServed

    try:
        dist = ort_web_dist()
        driver = chromium()
    except Unavailable as e:
        return {"skipped": str(e)}
    with tempfile.TemporaryDirectory() as tmp:
        served = WebServed("--student", f"bench={student}", "--ort-web", str(dist), "--idle-fps", "0",
                           "--breathing-period", "0", log_dir=Path(tmp))
        try:
            # ?sliders=1: the page poses itself (no daemon render per frame); tha4local.render(pose) is its hook.
            driver.get(f"{served.base}/local/bench?ep=wasm&sliders=1")
            wait(driver, "return window.tha4local.frames >= 1", 600)  # model export (cached), load, first run
            ms = []
            for i, pose in enumerate(poses):
                done = driver.execute_script("return window.tha4local.frames")
                driver.execute_script("window.tha4local.render(arguments[0])", [float(v) for v in pose])
                wait(driver, f"return window.tha4local.frames > {done}", 600)
                if i == 0:
                    canvas = premultiply(canvas_rgba8(driver)).astype(np.float64) / 127.5 - 1.0
                    ours = to_rgba8(exact_first, premultiplied=True)[0].numpy().astype(np.float64) / 127.5 - 1.0
                    db = psnr(canvas, ours)
                else:
                    ms.append(driver.execute_script("return window.tha4local.ms.at(-1)"))
            threads = driver.execute_script("return window.tha4local.threads")
        finally:
            driver.quit()
            served.stop()
    return {"ms_per_frame": statistics.median(ms), "psnr_vs_torch_exact_rgba8": db, "wasm_threads": threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default=str(STUDENT))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="for torch and ORT alike")
    ap.add_argument("--fp16", action="store_true", help="also time the --fp16 export")
    ap.add_argument("--no-browser", action="store_true", help="skip the headless-Chromium WASM row")
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
    browser = None if a.no_browser else browser_wasm(a.student, poses, exact)
    caps = torch.cpu.get_capabilities()
    cpu = caps.get("cpu_name") or caps.get("architecture", "CPU")
    if a.json:
        print(json.dumps({"cpu": cpu, "threads": a.threads, "rounds": a.rounds, "rows": rows, "browser_wasm": browser}))
        return
    base = rows["torch exact"]["ms_per_frame"]
    print(f"{Path(a.student).name}, {a.threads} threads, median of {a.rounds} rounds (one frame each), cpu {cpu}")
    for k, r in rows.items():
        size = f"{r['file_mib']:.1f} MiB" if r["file_mib"] is not None else ""
        q = "exact" if k == "torch exact" else f"{r['psnr_vs_torch_exact']:.1f} dB"
        print(f"  {k:<22} {r['ms_per_frame']:8.1f} ms/frame  ×{base / r['ms_per_frame']:.2f} vs torch exact  "
              f"{q:>9}  {size}")
    if browser is not None and "skipped" in browser:
        print(f"  {'browser wasm':<22} skipped: {browser['skipped']}")
    elif browser is not None:
        ms = browser["ms_per_frame"]
        print(f"  {'browser wasm':<22} {ms:8.1f} ms/frame  ×{base / ms:.2f} vs torch exact  "
              f"{browser['psnr_vs_torch_exact_rgba8']:.1f} dB (canvas, premultiplied RGBA8)  headless Chromium, "
              f"onnxruntime-web {ORT_WEB_VERSION}, {browser['wasm_threads']} WASM thread(s)")


if __name__ == "__main__":
    main()

"""What the `render`, `bench` and `inspect` commands do, apart from their Typer shells so tests and scripts call it."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ..imaging import save_png, to_rgba8
from ..pose import NUM_PARAMETERS
from ..poser import Poser


def read_poses(path: str | Path) -> np.ndarray:
    """float32 [N, 45] from any pose file (tha4bridge/posefile.py: the one reader, shared with the distiller)."""
    from ..posefile import read_pose_file

    return read_pose_file(path)


def render_to(poser: Poser, poses: np.ndarray, out: str | Path, batch: int = 4, region=None) -> int:
    """Render `poses` (the crop `region` only, if given); `out` ending in .npy gets float32 [N, 4, H, W]
    (official convention), anything else is a folder of 0000.png… (RGBA8 sRGB, straight alpha).
    Returns the number of frames written."""
    out = Path(out)
    to_npy = out.suffix.lower() == ".npy"
    chunks = []
    if not to_npy:
        out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(poses), batch):
        frames = poser.render(poses[start: start + batch], region)
        if to_npy:
            chunks.append(frames.detach().float().contiguous().cpu().numpy())
        else:
            for k, img in enumerate(to_rgba8(frames).cpu().numpy()):
                save_png(img, out / f"{start + k:04d}.png")
    if to_npy:
        out.parent.mkdir(parents=True, exist_ok=True)
        h, w = (region.h, region.w) if region else (poser.image_size, poser.image_size)
        np.save(out, np.concatenate(chunks) if chunks else np.zeros((0, 4, h, w), np.float32))
    return len(poses)


def settle(poser: Poser) -> float | None:
    """Calibrate a student's visibility mask now (serve does it on a low-priority thread while the first frames
    render whole): seconds taken, or None when there is no mask to calibrate."""
    renderer = getattr(poser, "renderer", None)
    if getattr(renderer, "mask", None) is None or renderer.mask.calibrated:
        return None
    t = time.perf_counter()
    renderer.calibrate_mask()  # joins a calibration already under way on its thread
    return time.perf_counter() - t


def bench(poser: Poser, frames: int = 20, warmup: int = 3, seed: int = 0) -> dict:
    """Milliseconds per frame (one pose at a time, as the daemon renders), over random poses, in the steady state:
    after the visibility mask's calibration (which would otherwise run during the timed frames) and warm-up."""
    from ..pose import LOWER, UPPER

    calibration_s = settle(poser)
    rng = np.random.default_rng(seed)
    poses = (LOWER + (UPPER - LOWER) * rng.random((frames + warmup, NUM_PARAMETERS))).astype(np.float32)
    sync = torch.cuda.synchronize if poser.device.type == "cuda" else (lambda: None)
    times, started = [], None
    for i, p in enumerate(poses):
        t = time.perf_counter()
        if i == warmup:
            started = time.time()
        poser.render(p)
        sync()
        if i >= warmup:
            times.append((time.perf_counter() - t) * 1000.0)
    times.sort()
    steady = ("steady state: timed after the visibility mask's calibration "
              f"({calibration_s:.1f} s, not counted) and {warmup} warm-up frames" if calibration_s is not None
              else f"steady state: timed after {warmup} warm-up frames (no visibility mask to calibrate)")
    describe = getattr(poser, "describe", dict)()
    return {
        "ms_per_frame_median": statistics.median(times),
        "ms_per_frame_p90": times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))],
        "fps_median": 1000.0 / statistics.median(times),
        "frames": frames,
        "mode": getattr(poser, "mode", "procedural"),
        "arithmetic": describe.get("arithmetic", "float32"),
        "device": str(poser.device),
        "threads": torch.get_num_threads(),
        "poser": poser.name,
        "calibration_s": calibration_s,
        "timed_from": started,  # time.time() when the first timed frame began (after the calibration)
        "steady_state": steady,
    }


def inspect_folder(folder: str | Path) -> dict:
    """What a character-model folder holds, and the problems found (never raises for a bad folder)."""
    from ..student.folder import ModelFileError, load_student_modules

    folder = Path(folder)
    info: dict = {"folder": str(folder), "files": {}, "problems": []}
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.is_file():
                info["files"][p.name] = p.stat().st_size
    try:
        cm, face, body, image = load_student_modules(folder)
    except ModelFileError as e:
        info["problems"].append(str(e))
        return info
    from ..poser import pick_device
    from ..student.renderer import SirenRenderer

    # What `--mode fast` would use here: its arrangements timed at load, as `serve` and `render` do (~1-2 s).
    device = pick_device("auto")
    info["fast_arithmetic"] = SirenRenderer(face.to(device), body.to(device), image, mode="fast",
                                            device=device).arithmetic_line()
    info["architecture"] = cm.arch.to_dict()
    info["official_architecture"] = cm.arch.is_official()
    info["parameters"] = {"face_morpher": sum(t.numel() for t in face.parameters()),
                          "body_morpher": sum(t.numel() for t in body.parameters())}
    alpha = (image[3] + 1) / 2
    info["image"] = {"size": list(image.shape[1:]), "opaque_fraction": round(float((alpha > 0.5).float().mean()), 4)}
    total = sum(info["files"].values())
    info["total_bytes"] = total
    return info

"""What the user sees during and after a run: progress bar, PNG grids, metrics CSV, plot and markdown report."""
from __future__ import annotations

import csv
import os
import platform
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from tha4bridge.imaging import psnr, save_png, to_rgba8

METRIC_FIELDS = ("stage", "examples", "phase", "lr", "loss", "l1", "masked_l1", "blended", "warped", "grid_change",
                 "color_change", "val_psnr", "val_ssim", "examples_per_s", "elapsed_s", "val_body_psnr")
# Validation PSNRs a build reports reaching (the first validation at or above each), so recipes can be compared.
MILESTONES_DB = (25.0, 30.0, 35.0)
# (stage, metrics.csv column, name): the face crop; the body morpher on the teacher's input (what the body stage is
# trained on); the whole frame as the student runs it (its own face pasted, then the body).
MILESTONE_SERIES = (("face", "val_psnr", "face"), ("body", "val_body_psnr", "body"), ("body", "val_psnr", "whole frame"))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM of two official-convention batches [N, C, H, W] on the [0, 1] scale (11-tap Gaussian, σ 1.5)."""
    a, b = ((a.float().cpu() + 1) * 0.5), ((b.float().cpu() + 1) * 0.5)
    x = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-x ** 2 / (2 * 1.5 ** 2))
    g = g / g.sum()
    c = a.shape[1]
    rows, cols = g.view(1, 1, 11, 1).expand(c, 1, 11, 1), g.view(1, 1, 1, 11).expand(c, 1, 1, 11)

    def blur(t):  # the Gaussian is separable: two 11-tap passes instead of one 121-tap one
        return F.conv2d(F.conv2d(t, rows, groups=c), cols, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.double().mean())


def batch_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over the batch of per-image PSNR (the fixture metric)."""
    return sum(psnr(a[i], b[i]) for i in range(len(a))) / len(a)


class MetricsLog:
    """metrics.csv, one line per validation; on resume, lines past the checkpoint are dropped (they are redone)."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, stage: str, examples: int) -> None:
        if not self.path.is_file():
            return
        order = {"face": 0, "body": 1}
        here = (order[stage], examples)

        def kept(r):  # rows up to the checkpoint; a stage's start row is rewritten when it restarts at 0
            key = (order[r["stage"]], int(r["examples"]))
            return key < here or (key == here and examples > 0)

        self._write([r for r in self.rows() if kept(r)])

    def rows(self) -> list[dict]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def _write(self, rows: list[dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, METRIC_FIELDS)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.path)

    def append(self, row: dict) -> None:
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, METRIC_FIELDS)
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items() if k in METRIC_FIELDS})


def milestones(rows: list[dict], stage: str, column: str) -> tuple[list[tuple[float, int, float] | None], float]:
    """For each of MILESTONES_DB, (dB, examples in the stage, seconds since the build started) of the first
    validation at or above it, or None; and the best PSNR of the series (nan without any)."""
    series = [(int(r["examples"]), float(r[column]), float(r["elapsed_s"] or "nan"))
              for r in rows if r["stage"] == stage and r.get(column)]
    reached = []
    for db in MILESTONES_DB:
        hit = next((s for s in series if s[1] >= db), None)
        reached.append(None if hit is None else (db, hit[0], hit[2]))
    return reached, max((s[1] for s in series), default=float("nan"))


def milestone_lines(rows: list[dict]) -> list[str]:
    """What `distiller build` prints at the end: each milestone's examples and wall time, per series."""
    lines = ["validation PSNR milestones (examples in the stage; wall time since the build started):"]
    for stage, column, name in MILESTONE_SERIES:
        reached, best = milestones(rows, stage, column)
        if best != best:  # nan: this series was never measured (e.g. metrics written before the column existed)
            continue
        parts = [f"{db:.0f} dB not reached" if hit is None else
                 f"{hit[0]:.0f} dB at {hit[1]:,} examples ({hit[2] / 60:.1f} min)"
                 for db, hit in zip(MILESTONES_DB, reached)]
        lines.append(f"  {name}: " + ", ".join(parts) + f"; best {best:.2f} dB")
    return lines


def save_grid(path: Path, teacher: torch.Tensor, student: torch.Tensor, size: int | None = None) -> None:
    """One row per pose: teacher | student | |difference| ×4 (opaque grey), images on a checkerboard."""
    rows = []
    for t, s in zip(teacher, student):
        diff = ((t - s).abs().mean(0, keepdim=True) * 4).clamp(0, 1)
        diff = torch.cat([diff.expand(3, -1, -1) * 2 - 1, torch.ones_like(diff)])
        rows.append(torch.cat([t, s.clamp(-1, 1), diff], dim=2))
    grid = torch.cat(rows, dim=1)[None].float().cpu()
    if size is not None and grid.shape[-2] // len(teacher) != size:
        scale = size / (grid.shape[-2] // len(teacher))
        grid = F.interpolate(grid, scale_factor=scale, mode="bilinear", align_corners=False, antialias=True)
    rgba = to_rgba8(grid)[0]
    # Composite over a light checkerboard so transparent areas read as such in any viewer.
    h, w = rgba.shape[:2]
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    board = torch.where(((yy // 16 + xx // 16) % 2 == 0), 235, 200).to(torch.float32)[..., None]
    a = rgba[..., 3:4].float() / 255
    rgb = rgba[..., :3].float() * a + board * (1 - a)
    out = torch.cat([rgb.round().to(torch.uint8), torch.full_like(rgba[..., 3:4], 255)], dim=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(out, path)


def progress_bar(stage: str, total: int, start: int, enabled: bool) -> tqdm:
    return tqdm(total=total, initial=start, unit="ex", desc=stage, disable=not enabled, dynamic_ncols=True,
                smoothing=0.1)


def hardware() -> str:
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return f"{n}x {torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    return (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")


def final_report(work: Path, rows: list[dict], elapsed: float, world_size: int, config_yaml: str,
                 note: str = "", started_from: str = "") -> None:
    """progress.png (loss and validation PSNR against examples, per stage) and report.md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex="col")
    for col, stage in enumerate(("face", "body")):
        rs = [r for r in rows if r["stage"] == stage]
        if not rs:
            continue
        ex = [int(r["examples"]) for r in rs]
        loss = [float(r["loss"]) if r["loss"] else float("nan") for r in rs]
        val = [float(r["val_psnr"]) if r["val_psnr"] else float("nan") for r in rs]
        axes[0][col].plot(ex, loss)
        axes[0][col].set_title(f"{stage} morpher: training loss")
        axes[0][col].set_yscale("log")
        axes[1][col].plot(ex, val, marker="o")
        axes[1][col].set_title(f"{stage} morpher: validation PSNR (dB)")
        axes[1][col].set_xlabel("examples")
    fig.tight_layout()
    fig.savefig(work / "progress.png", dpi=80)
    plt.close(fig)

    lines = ["# Distillation report", ""]
    if started_from:
        lines.append(f"- started from: {started_from}")
    for stage in ("face", "body"):
        rs = [r for r in rows if r["stage"] == stage and r["val_psnr"]]
        if rs:
            first, last = rs[0], rs[-1]
            lines.append(f"- {stage} morpher: {last['examples']} examples, validation PSNR "
                         f"{float(first['val_psnr']):.2f} → {float(last['val_psnr']):.2f} dB, SSIM "
                         f"{float(first['val_ssim']):.4f} → {float(last['val_ssim']):.4f}")
    lines += [f"- time: {elapsed / 60:.1f} min on {world_size} process(es)", f"- hardware: {hardware()}"]
    lines += ["", *milestone_lines(rows)]
    if note:
        lines += ["", note]
    lines += ["",
              "![progress](progress.png)", "", "## Configuration", "", "```yaml", config_yaml.rstrip(), "```", ""]
    (work / "report.md").write_text("\n".join(lines))

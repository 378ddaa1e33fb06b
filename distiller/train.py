"""The distillation loop: face morpher, then body morpher, then export. Read it top to bottom.

    for stage in (face, body):
        resume from <out>/distill/checkpoint.pt if it is there, else fresh weights (seeded)
        until the stage's examples are done:
            poses for this step (a pure function of seed and step) → this rank's slice of the global batch
            teacher targets (no grad) → student → official loss → Adam step with the scheduled LR
            every checkpoint interval: atomic checkpoint (model, optimizer, position, RNG); rank 0 only
            every sample interval: validation PSNR/SSIM, a metrics.csv line and a PNG grid; rank 0 only
    export the character-model folder into <out>, then progress.png and report.md

Run under `torchrun` for several processes (DDP, gloo on CPU, NCCL on CUDA): the global batch is split across
ranks, gradients are averaged, only rank 0 writes. Killed at any moment, the same command resumes from the last
checkpoint, so at most one checkpoint interval of work is lost.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tha4bridge.imaging import FACE_COLS, FACE_ROWS
from tha4bridge.poser import pick_device
from tha4bridge.student import BodyMorpher, FaceMorpher, paste_face

from .config import FACE_MASK_WEIGHT, DistillConfig
from .export import export_character_model
from .poses import PoseSource, load_pose_file
from .report import MetricsLog, batch_psnr, final_report, progress_bar, save_grid, ssim
from .student_train import TrainableBody, TrainableFace
from .targets import Targets, face_mask_for, make_targets

CHECKPOINT_FORMAT = "tha4bridge-distiller-1"
STAGES = ("face", "body")


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


# ---------------------------------------------------------------------------------------------------
# Checkpoints: one file, written to a temporary name and renamed, so a kill never leaves a torn checkpoint.

def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a distiller checkpoint (delete it to start over)")
    return state


# ---------------------------------------------------------------------------------------------------
# Losses (facts §4.3, §4.4).

def face_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
    diff = (pred - target).abs()
    l1 = diff.mean()
    masked = (diff * mask).mean()  # a mean over all elements, not normalized by the mask area (official)
    return l1 + FACE_MASK_WEIGHT * masked, {"l1": l1.item(), "masked_l1": masked.item()}


def body_loss(outs: list[torch.Tensor], t, weights: dict[str, float]) -> tuple[torch.Tensor, dict]:
    blended, _alpha, color_change, warped, grid_change = outs
    terms = {"blended": F.l1_loss(blended, t.final), "color_change": F.l1_loss(color_change, t.final)}
    if t.warped is not None:  # a Poser teacher (the demo) has no warp to imitate
        terms["warped"] = F.l1_loss(warped, t.warped)
        terms["grid_change"] = F.l1_loss(grid_change, t.grid_change)
    loss = sum(weights[k] * v for k, v in terms.items())
    return loss, {k: v.item() for k, v in terms.items()}


# ---------------------------------------------------------------------------------------------------

class Run:
    """Everything one `distiller build` needs, created once per process."""

    def __init__(self, config: DistillConfig, out: Path, device: str = "auto", progress: bool = True,
                 log=print):
        self.out, self.work = Path(out), Path(out) / "distill"
        self.device = pick_device(device)
        self.dist = init_distributed(self.device)
        if self.device.type == "cuda" and self.dist.world > 1:
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.log = log if self.dist.main else (lambda *a, **k: None)
        self.progress = progress and self.dist.main

        # The saved configuration is authoritative on a rerun, as the official distill.py does.
        saved = self.work / "config.yaml"
        if saved.is_file():
            stored = DistillConfig.from_yaml(saved)
            if stored.to_yaml() != config.to_yaml():
                self.log(f"resuming with the saved settings in {saved} (delete {self.work} to start over)")
            config = stored
        elif self.dist.main:
            self.work.mkdir(parents=True, exist_ok=True)
            tmp = saved.with_suffix(".tmp")
            tmp.write_text(config.to_yaml())
            os.replace(tmp, saved)
        self.config = config
        self.targets: Targets = make_targets(config.teacher, config.image, self.device, config.teacher_mode)
        self.mask = face_mask_for(self.targets, config.face_mask).to(self.device)
        pose_file = load_pose_file(config.poses) if config.poses else None
        self.poses = PoseSource(config.seed, pose_file, config.pose_file_fraction)
        self.val_poses = self.poses.validation(config.validation_poses).to(self.device)
        self.metrics = MetricsLog(self.work / "metrics.csv")
        self.checkpoint_path = self.work / "checkpoint.pt"

        torch.manual_seed(config.seed)  # initial weights: the same on every rank (DDP also broadcasts rank 0's)
        arch = config.arch
        self.face = FaceMorpher(arch).to(self.device)
        self.body = BodyMorpher(arch).to(self.device)
        self._val_cache: dict[str, torch.Tensor] = {}

    # -- validation ---------------------------------------------------------------------------------

    def _val_teacher(self, stage: str) -> torch.Tensor:
        if stage not in self._val_cache:
            p = self.val_poses
            self._val_cache[stage] = self.targets.face(p) if stage == "face" else self.targets.body(p).final
        return self._val_cache[stage]

    @torch.no_grad()
    def _val_student(self, stage: str) -> torch.Tensor:
        p = self.val_poses
        face = TrainableFace(self.face)(p)
        if stage == "face":
            return face
        outs = []
        for i in range(0, len(p), 4):  # the student as it will run: its own face pasted, then the body
            image = paste_face(self.targets.image.expand(len(p[i:i + 4]), -1, -1, -1), face[i:i + 4])
            outs.append(TrainableBody(self.body)(image, p[i:i + 4])[0])
        return torch.cat(outs)

    def validate(self, stage: str, examples: int) -> tuple[float, float]:
        teacher, student = self._val_teacher(stage), self._val_student(stage)
        n = min(4, len(teacher))
        save_grid(self.work / "samples" / f"{stage}_{examples:08d}.png", teacher[:n], student[:n],
                  size=None if stage == "face" else 256)
        return batch_psnr(student, teacher), ssim(student, teacher)

    # -- one stage ----------------------------------------------------------------------------------

    def train_stage(self, stage: str, state: dict | None, elapsed_before: float) -> float:
        cfg, d = self.config, self.dist
        schedule = cfg.schedule(stage)
        total = schedule.total
        module = TrainableFace(self.face) if stage == "face" else TrainableBody(self.body)
        model = module
        if d.world > 1:
            model = nn.parallel.DistributedDataParallel(
                module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        params = (self.face if stage == "face" else self.body).parameters()
        optimizer = torch.optim.Adam(params, lr=schedule.lr(0), betas=(0.9, 0.999), eps=1e-8)
        examples = 0
        if state is not None and state["stage"] == stage:
            examples = int(state["examples"])
            if state.get("optimizer") is not None:
                optimizer.load_state_dict(state["optimizer"])
        per_rank = max(1, cfg.batch_size // d.world)
        per_step = per_rank * d.world
        ckpt_every, sample_every = cfg.interval(stage, "checkpoint"), cfg.interval(stage, "sample")
        start_time, start_examples = time.monotonic(), examples

        if examples == 0 and d.main:
            val_psnr, val_ssim = self.validate(stage, 0)
            self.metrics.append(dict(stage=stage, examples=0, phase=1, lr=schedule.lr(0), val_psnr=val_psnr,
                                     val_ssim=val_ssim, elapsed_s=elapsed_before))
            self.log(f"{stage} morpher: {total} examples; validation PSNR at start {val_psnr:.2f} dB")
        bar = progress_bar(f"{stage} morpher", total, examples, self.progress)
        running: dict[str, float] = {}
        count = 0
        while examples < total:
            step = examples // per_step
            pose = self.poses.batch(step, per_step)[d.rank * per_rank:(d.rank + 1) * per_rank].to(self.device)
            lr = schedule.lr(examples)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if stage == "face":
                target = self.targets.face(pose)
                loss, terms = face_loss(model(pose), target, self.mask)
            else:
                t = self.targets.body(pose)
                loss, terms = body_loss(model(t.input, pose), t, schedule.weights(examples))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            before, examples = examples, examples + per_step
            terms["loss"] = loss.item()
            for k, v in terms.items():
                running[k] = running.get(k, 0.0) + v
            count += 1
            rate = (examples - start_examples) / max(1e-9, time.monotonic() - start_time)
            bar.set_postfix(phase=f"{schedule.phase_index(before) + 1}/{len(schedule.phases)}",
                            loss=f"{terms['loss']:.4f}", lr=f"{lr:.1e}")
            bar.update(per_step)
            elapsed = elapsed_before + time.monotonic() - start_time
            done = examples >= total
            if d.main and (done or examples // sample_every > before // sample_every):
                val_psnr, val_ssim = self.validate(stage, examples)
                means = {k: v / count for k, v in running.items()}
                self.metrics.append(dict(stage=stage, examples=examples, phase=schedule.phase_index(before) + 1,
                                         lr=lr, val_psnr=val_psnr, val_ssim=val_ssim, examples_per_s=rate,
                                         elapsed_s=elapsed, **means))
                self.log(f"{stage} {examples}/{total}: loss {means['loss']:.4f}, val PSNR {val_psnr:.2f} dB, "
                         f"SSIM {val_ssim:.4f}, {rate:.2f} examples/s")
                running, count = {}, 0
            if done or examples // ckpt_every > before // ckpt_every:
                next_stage = "body" if stage == "face" else "done"
                if d.main:
                    save_checkpoint(self.checkpoint_path, self._state(
                        next_stage if done else stage, 0 if done else examples,
                        None if done else optimizer.state_dict(), elapsed))
        bar.close()
        return elapsed_before + time.monotonic() - start_time

    def _state(self, stage: str, examples: int, optimizer: dict | None, elapsed: float) -> dict:
        return {"format": CHECKPOINT_FORMAT, "stage": stage, "examples": examples,
                "face": self.face.state_dict(), "body": self.body.state_dict(), "optimizer": optimizer,
                "rng": torch.get_rng_state(), "elapsed": elapsed, "config": self.config.to_yaml()}

    # -- the whole run ------------------------------------------------------------------------------

    def run(self) -> Path:
        state = load_checkpoint(self.checkpoint_path)
        barrier(self.dist)  # every rank has read the checkpoint before rank 0 may overwrite it
        elapsed = 0.0
        if state is not None:
            self.face.load_state_dict(state["face"])
            self.body.load_state_dict(state["body"])
            torch.set_rng_state(state["rng"])
            elapsed = float(state["elapsed"])
            if self.dist.main:
                self.metrics.truncate_after("face" if state["stage"] == "face" else "body",
                                            state["examples"] if state["stage"] != "done" else 1 << 62)
            self.log(f"resuming: {state['stage']} morpher at {state['examples']} examples"
                     if state["stage"] != "done" else "already trained: exporting")
        for stage in STAGES:
            if state is not None and STAGES.index(stage) < _stage_order(state["stage"]):
                continue
            elapsed = self.train_stage(stage, state, elapsed)
            state = None  # the next stage starts fresh (its checkpoint was written at the stage's end)
        barrier(self.dist)
        if self.dist.main:
            export_character_model(self.out, self.face.state_dict(), self.body.state_dict(), self.config.arch,
                                   self.config.image or self.targets.image_path, self.targets.image)
            small = self.config.body_examples < 10_000
            final_report(self.work, self.metrics.rows(), elapsed, self.dist.world, self.config.to_yaml(),
                         note="This budget checks the pipeline; a student worth using needs `--budget standard` or "
                              "`paper` (the paper trains 1M face and 1.5M body examples)." if small else "")
            self.log(f"student written to {self.out} (report: {self.work / 'report.md'})")
        barrier(self.dist)
        return self.out


def _stage_order(stage: str) -> int:
    return {"face": 0, "body": 1, "done": 2}[stage]


def build(config: DistillConfig, out: str | Path, device: str = "auto", progress: bool = True, log=print) -> Path:
    run = Run(config, Path(out), device, progress, log)
    try:
        return run.run()
    finally:
        if run.dist.world > 1 and dist.is_initialized():
            dist.destroy_process_group()

"""The distillation loop: face morpher, then body morpher, then export. Read it top to bottom.

    for stage in (face, body):
        resume from <out>/distill/checkpoint.pt if it is there, else fresh weights (seeded, or --init-from's)
        until the stage's examples are done:
            poses for this step (a pure function of seed and step) → this rank's slice of the global batch
            teacher targets (no grad) → student → official loss → Adam step with the scheduled LR
            every checkpoint interval: atomic checkpoint (model, optimizer, position, RNG); rank 0 only
            every sample interval: validation PSNR/SSIM, a metrics.csv line and a PNG grid; rank 0 only
    export the character-model folder into <out>, then progress.png and report.md; print the PSNR milestones

Run under `torchrun` for several processes (DDP, gloo on CPU, NCCL on CUDA): the global batch is split across
ranks, gradients are averaged, only rank 0 writes. Killed at any moment, the same command resumes from the last
checkpoint, so at most one checkpoint interval of work is lost.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from tha4bridge.poser import pick_device
from tha4bridge.student import BodyMorpher, FaceMorpher, paste_face

from .checkpoint import load_checkpoint, save_checkpoint
from .config import DistillConfig, StageSchedule
from .distributed import barrier, finish, init_distributed
from .export import export_character_model
from .losses import body_loss, face_loss
from .poses import PoseSource, load_pose_file
from .report import MetricsLog, batch_psnr, final_report, milestone_lines, progress_bar, save_grid, ssim
from .student_train import TrainableBody, TrainableFace
from .targets import Targets, derives_face_mask, face_mask_for, make_targets, save_face_mask
from .warm import apply_start, load_start, zero_alpha

DERIVED_MASK_NAME = "face_mask_derived.png"  # beside the student files, for the user to inspect

STAGES = ("face", "body")


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

        # A bad --init-from is refused before config.yaml is saved (a saved config wins on every rerun).
        fresh = not (self.work / "config.yaml").is_file()
        self.start = load_start(config.init_from, config.arch) if fresh and config.init_from else None
        self.config = config = self._settled_config(config)
        self.targets: Targets = make_targets(config.teacher, config.image, self.device, config.teacher_mode)
        self.mask = face_mask_for(self.targets, config.face_mask).to(self.device)
        if derives_face_mask(self.targets, config.face_mask) and self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            saved = save_face_mask(self.mask, self.out / DERIVED_MASK_NAME)
            self.log(f"no --face-mask: derived one from the pixels the teacher's face moves across expression "
                     f"poses ({int(self.mask[0].sum())} of 128x128 face pixels) and saved it to {saved}; look at "
                     f"it, and pass an edited copy as --face-mask if it misses a part")
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

    def start_weights(self) -> str:
        """Load --init-from's weights into both morphers (a fresh run); what the run started from, in words."""
        cfg = self.config
        if cfg.init_from:
            apply_start(self.face, self.body, self.start or load_start(cfg.init_from, cfg.arch))
            self.log(f"starting from the student in {cfg.init_from} (its face and body morpher weights)")
        return _started_from(cfg)

    # -- validation ---------------------------------------------------------------------------------

    def _val_teacher(self, key: str) -> torch.Tensor:
        """The teacher's face crops ("face"), final frames ("body") or body inputs ("input") on the val poses."""
        if key not in self._val_cache:
            p = self.val_poses
            if key == "face":
                self._val_cache[key] = self.targets.face(p)
            else:
                targets = [self.targets.body(p[i:i + 4]) for i in range(0, len(p), 4)]
                self._val_cache["body"] = torch.cat([t.final for t in targets])
                self._val_cache["input"] = torch.cat([t.input for t in targets])
        return self._val_cache[key]

    @torch.no_grad()
    def _val_student(self, stage: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The face crops (face stage); else the whole frames as the student runs (its own face pasted, then the
        body) and the body morpher alone on the teacher's input (what the body stage is trained on)."""
        p = self.val_poses
        face = TrainableFace(self.face)(p)
        if stage == "face":
            return face, None
        whole, body = [], []
        teacher_input = self._val_teacher("input")
        for i in range(0, len(p), 4):
            image = paste_face(self.targets.image.expand(len(p[i:i + 4]), -1, -1, -1), face[i:i + 4])
            whole.append(TrainableBody(self.body)(image, p[i:i + 4])[0])
            body.append(TrainableBody(self.body)(teacher_input[i:i + 4], p[i:i + 4])[0])
        return torch.cat(whole), torch.cat(body)

    def validate(self, stage: str, examples: int) -> dict[str, float]:
        """val_psnr and val_ssim (the face crop, or the whole frame), and for the body stage val_body_psnr."""
        teacher = self._val_teacher(stage)
        student, body = self._val_student(stage)
        n = min(4, len(teacher))
        save_grid(self.work / "samples" / f"{stage}_{examples:08d}.png", teacher[:n], student[:n],
                  size=None if stage == "face" else 256)
        out = dict(val_psnr=batch_psnr(student, teacher), val_ssim=ssim(student, teacher))
        if body is not None:
            out["val_body_psnr"] = batch_psnr(body, teacher)
        return out

    def _settled_config(self, config: DistillConfig) -> DistillConfig:
        """The saved configuration is authoritative on a rerun, as the official distill.py does; else save ours."""
        saved = self.work / "config.yaml"
        if saved.is_file():
            stored = DistillConfig.from_yaml(saved)
            if stored.to_yaml() != config.to_yaml():
                self.log(f"resuming with the saved settings in {saved} (delete {self.work} to start over)")
            return stored
        if self.dist.main:
            self.work.mkdir(parents=True, exist_ok=True)
            tmp = saved.with_suffix(".tmp")
            tmp.write_text(config.to_yaml())
            os.replace(tmp, saved)
        return config

    # -- one stage ----------------------------------------------------------------------------------

    def _trainer(self, stage: str, state: dict | None, lr: float) -> tuple[nn.Module, torch.optim.Optimizer, int]:
        """The stage's trainable forward (DDP-wrapped under torchrun), its Adam and the examples already done."""
        module = TrainableFace(self.face) if stage == "face" else TrainableBody(self.body)
        model = module
        if self.dist.world > 1:
            model = nn.parallel.DistributedDataParallel(
                module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        params = (self.face if stage == "face" else self.body).parameters()
        optimizer = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
        examples = 0
        if state is not None and state["stage"] == stage:
            examples = int(state["examples"])
            if state.get("optimizer") is not None:
                optimizer.load_state_dict(state["optimizer"])
        cfg = self.config
        if stage == "body" and examples == 0 and cfg.init_from and cfg.warm_zero_alpha and cfg.body_examples:
            zero_alpha(self.body)  # where the body stage begins (a resumed stage has its weights in the checkpoint)
        return model, optimizer, examples

    def _step(self, stage: str, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: StageSchedule,
              examples: int, per_rank: int) -> dict[str, float]:
        """One Adam step on this rank's slice of the global batch that starts at `examples`; the loss terms."""
        d, per_step = self.dist, per_rank * self.dist.world
        pose = self.poses.batch(examples // per_step, per_step)[d.rank * per_rank:(d.rank + 1) * per_rank]
        pose = pose.to(self.device)
        for group in optimizer.param_groups:
            group["lr"] = schedule.lr(examples)
        if stage == "face":
            target = self.targets.face(pose)
            loss, terms = face_loss(model(pose), target, self.mask)
        else:
            t = self.targets.body(pose)
            loss, terms = body_loss(model(t.input, pose), t, schedule.weights(examples))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        terms["loss"] = loss.item()
        return terms

    def _log_start(self, stage: str, schedule: StageSchedule, elapsed: float) -> None:
        val = self.validate(stage, 0)
        self.metrics.append(dict(stage=stage, examples=0, phase=1, lr=schedule.lr(0), elapsed_s=elapsed, **val))
        self.log(f"{stage} morpher: {schedule.total} examples; validation PSNR at start {_psnrs(val)}")

    def _log_progress(self, stage: str, examples: int, total: int, row: dict, running: dict, count: int) -> None:
        """Validation, a metrics.csv line (`row` plus the mean loss terms since the last one) and a log line."""
        val = self.validate(stage, examples)
        means = {k: v / count for k, v in running.items()}
        self.metrics.append(dict(stage=stage, examples=examples, **row, **val, **means))
        self.log(f"{stage} {examples}/{total}: loss {means['loss']:.4f}, val PSNR {_psnrs(val)}, "
                 f"SSIM {val['val_ssim']:.4f}, {row['examples_per_s']:.2f} examples/s")

    def train_stage(self, stage: str, state: dict | None, elapsed_before: float) -> float:
        cfg, d = self.config, self.dist
        schedule = cfg.schedule(stage)
        total = schedule.total
        model, optimizer, examples = self._trainer(stage, state, schedule.lr(0))
        per_rank = max(1, cfg.batch_size // d.world)
        per_step = per_rank * d.world
        ckpt_every, sample_every = cfg.interval(stage, "checkpoint"), cfg.interval(stage, "sample")
        start_time, start_examples = time.monotonic(), examples
        if examples == 0 and d.main:
            self._log_start(stage, schedule, elapsed_before)
        bar = progress_bar(f"{stage} morpher", total, examples, self.progress)
        running: dict[str, float] = {}
        count = 0
        while examples < total:
            lr = schedule.lr(examples)
            terms = self._step(stage, model, optimizer, schedule, examples, per_rank)
            before, examples = examples, examples + per_step
            for k, v in terms.items():
                running[k] = running.get(k, 0.0) + v
            count += 1
            rate = (examples - start_examples) / max(1e-9, time.monotonic() - start_time)
            phase = schedule.phase_index(before) + 1
            bar.set_postfix(phase=f"{phase}/{len(schedule.phases)}", loss=f"{terms['loss']:.4f}", lr=f"{lr:.1e}")
            bar.update(per_step)
            elapsed = elapsed_before + time.monotonic() - start_time
            done = examples >= total
            if d.main and (done or examples // sample_every > before // sample_every):
                row = dict(phase=phase, lr=lr, examples_per_s=rate, elapsed_s=elapsed)
                self._log_progress(stage, examples, total, row, running, count)
                running, count = {}, 0
            if (done or examples // ckpt_every > before // ckpt_every) and d.main:
                next_stage = "body" if stage == "face" else "done"
                save_checkpoint(self.checkpoint_path, self._state(
                    next_stage if done else stage, 0 if done else examples,
                    None if done else optimizer.state_dict(), elapsed))
        bar.close()
        return elapsed_before + time.monotonic() - start_time

    def _state(self, stage: str, examples: int, optimizer: dict | None, elapsed: float) -> dict:
        return {"stage": stage, "examples": examples,
                "face": self.face.state_dict(), "body": self.body.state_dict(), "optimizer": optimizer,
                "rng": torch.get_rng_state(), "elapsed": elapsed, "config": self.config.to_yaml()}

    # -- the whole run ------------------------------------------------------------------------------

    def run(self) -> Path:
        state = load_checkpoint(self.checkpoint_path)
        barrier(self.dist)  # every rank has read the checkpoint before rank 0 may overwrite it
        elapsed = 0.0
        started_from = self.start_weights() if state is None else _started_from(self.config)
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
            rows = self.metrics.rows()
            final_report(self.work, rows, elapsed, self.dist.world, self.config.to_yaml(),
                         note="This budget checks the pipeline; a student worth using needs `--budget standard` or "
                              "`paper` (the paper trains 1M face and 1.5M body examples)." if small else "",
                         started_from=started_from)
            self.log(f"student written to {self.out} (report: {self.work / 'report.md'})")
            for line in milestone_lines(rows):
                self.log(line)
        barrier(self.dist)
        return self.out


def _psnrs(val: dict) -> str:
    if "val_body_psnr" in val:
        return f"{val['val_psnr']:.2f} dB whole frame, {val['val_body_psnr']:.2f} dB body"
    return f"{val['val_psnr']:.2f} dB"


def _started_from(config: DistillConfig) -> str:
    if config.init_from:
        return f"the student in {config.init_from} (`--init-from`)"
    return f"random SIREN weights (seed {config.seed})"


def _stage_order(stage: str) -> int:
    return {"face": 0, "body": 1, "done": 2}[stage]


def build(config: DistillConfig, out: str | Path, device: str = "auto", progress: bool = True, log=print) -> Path:
    run = Run(config, Path(out), device, progress, log)
    try:
        return run.run()
    finally:
        finish(run.dist)

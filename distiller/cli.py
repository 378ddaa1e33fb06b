"""`distiller` command line: a thin shell over distiller.train / evaluate / check."""
from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Build a THA4 student model for one character image from a teacher.")


@app.callback()
def _main() -> None:
    """Build a THA4 student model for one character image from a teacher."""


def _ints(text: str | None) -> list[int] | None:
    return None if not text else [int(x) for x in text.split(",")]


@app.command()
def build(
    out: Path = typer.Option(..., "--out", "-o", help="Student folder to write (rerunning resumes)."),
    teacher: str = typer.Option(None, help="Folder of the five official THA4 .pt files, a student folder, or demo "
                                           "(the default)."),
    image: str = typer.Option(None, help="Character PNG (512x512 RGBA). Default with --teacher demo: its own."),
    face_mask: str = typer.Option(None, "--face-mask", help="Face mask PNG (RGB, black/white). Without it: the demo's own, or derived from what the teacher's face moves and saved as face_mask_derived.png in the output folder."),
    budget: str = typer.Option(None, help="quick | standard | paper | N (face examples; body gets 1.5 N; 0 exports "
                                          "the starting weights)."),
    init_from: str = typer.Option(None, "--init-from",
                                  help="Student folder (same architecture) whose weights start both morphers, with "
                                       "a fine-tuning schedule: far fewer examples than from random weights."),
    config: Path = typer.Option(None, help="YAML file of distiller settings (see distiller/config.py)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    teacher_mode: str = typer.Option(None, "--teacher-mode",
                                     help="THA4 teacher arithmetic: exact or bf16 (auto: bf16 on CUDA; bf16 is ~2x "
                                          "faster on CPUs with AMX)."),
    poses: str = typer.Option(None, help="Pose file: official pose_dataset.pt, .npy [N,45] or JSON."),
    batch_size: int = typer.Option(None, "--batch-size", help="Global batch (default 8)."),
    face_width: int = typer.Option(None, "--face-width", help="Face morpher width (official 128)."),
    body_widths: str = typer.Option(None, "--body-widths", help="Body level widths, e.g. 360,180,90 (official)."),
    body_sizes: str = typer.Option(None, "--body-sizes", help="Body level sizes, e.g. 128,256,512 (official)."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", help="Examples between checkpoints."),
    sample_every: int = typer.Option(None, "--sample-every", help="Examples between grids/validation."),
    seed: int = typer.Option(None, help="Training seed."),
    progress: bool = typer.Option(True, help="Show the progress bar."),
) -> None:
    """Distill a student for one character from a teacher; rerun the same command to resume."""
    from .check import check_inputs
    from .config import DistillConfig
    from .train import build as run_build

    overrides = dict(teacher=teacher, teacher_mode=teacher_mode, image=image, face_mask=face_mask, budget=budget,
                     poses=poses, batch_size=batch_size, face_width=face_width, body_widths=_ints(body_widths),
                     body_sizes=_ints(body_sizes), checkpoint_every=checkpoint_every, sample_every=sample_every,
                     seed=seed, init_from=init_from)
    try:
        if config is not None:
            cfg = DistillConfig.from_yaml(config, **overrides)
        else:
            cfg = DistillConfig(**{k: v for k, v in overrides.items() if v is not None})
    except (ValueError, TypeError, OSError) as e:
        typer.echo(f"distiller build: {e}", err=True)
        raise typer.Exit(2)
    if cfg.teacher != "demo" and not cfg.image and not (Path(cfg.teacher) / "character_model.yaml").is_file():
        typer.echo("distiller build: --image is needed with this teacher (without --face-mask the mask is derived "
                   "from the teacher and saved beside the output)", err=True)
        raise typer.Exit(2)
    problems = check_inputs(cfg.image or None, cfg.face_mask or None)
    if problems:
        for p in problems:
            typer.echo(p, err=True)
        raise typer.Exit(2)
    try:
        run_build(cfg, out, device=device, progress=progress)
    except (ValueError, OSError) as e:
        typer.echo(f"distiller build: {e}", err=True)
        raise typer.Exit(1)


@app.command("eval")
def eval_(
    student: Path = typer.Option(..., help="Student folder (character_model.yaml)."),
    teacher: str = typer.Option("demo", help="Folder of the five official .pt files, a student folder, or demo."),
    image: str = typer.Option("", help="Character PNG for the THA4 teacher (default: the student's)."),
    poses: int = typer.Option(16, help="Number of fixed validation poses."),
    device: str = typer.Option("auto"),
) -> None:
    """PSNR and SSIM (LPIPS when its weights are local) of a student against its teacher."""
    from tha4bridge.student import ModelFileError

    from .evaluate import evaluate

    try:
        r = evaluate(str(student), teacher, image, poses, device)
    except (ModelFileError, ValueError, OSError) as e:
        typer.echo(f"distiller eval: {e}", err=True)
        raise typer.Exit(1)
    lp = "n/a (no local LPIPS weights)" if r["lpips"] is None else f"{r['lpips']:.4f}"
    typer.echo(f"{r['poses']} poses: PSNR {r['psnr_db']:.2f} dB, SSIM {r['ssim']:.4f}, LPIPS {lp}")


@app.command()
def check(
    image: Path = typer.Option(None, help="Character PNG."),
    face_mask: Path = typer.Option(None, "--face-mask", help="Face mask PNG."),
) -> None:
    """Validate the character image and face mask; each problem is reported in a sentence."""
    from .check import check_inputs

    if image is None and face_mask is None:
        typer.echo("distiller check: give --image and/or --face-mask", err=True)
        raise typer.Exit(2)
    problems = check_inputs(image, face_mask)
    for p in problems:
        typer.echo(p)
    if problems:
        raise typer.Exit(1)
    typer.echo("ok: the inputs look usable")


if __name__ == "__main__":
    app()

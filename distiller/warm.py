"""`distiller build --init-from STUDENT_DIR`: start both morphers from an existing student's weights.

Every student learns the same motions (how a head turn moves pixels, how an eyelid closes); only the character's
shapes and colours differ, so a student of another character is a far better start than random SIREN weights.
Measured on the fixtures (teacher lambda_01, start lambda_00, benchmarks/bench_transfer.py): the face morpher
reaches 22 dB in 320 examples from lambda_00 and stays at 7 dB from random weights.

The start's body morpher paints lambda_00's colours over the new image where its alpha is high: on lambda_01 its
blend scores 23.5 dB while its warp alone scores 25.0 (the new image unwarped: 24.2). So the alpha output starts at
zero (`ZERO_ALPHA_AT_START`): the first frame is the new image moved by the old warp, and the colours are learned.
"""
from __future__ import annotations

from pathlib import Path

import torch

from tha4bridge.student.folder import ModelFileError, load_student_modules
from tha4bridge.student.network import ALPHA, BodyMorpher, FaceMorpher, StudentArch


def _describe(arch: StudentArch) -> str:
    return (f"face width {arch.face_width} x {arch.face_layers} layers, body widths "
            f"{','.join(map(str, arch.body_widths))} at sizes {','.join(map(str, arch.body_sizes))} x "
            f"{arch.body_layers} layers")


def load_start(folder: str | Path, arch: StudentArch) -> tuple[dict, dict]:
    """The face and body state dicts of the student in `folder`, checked to be `arch`; one-line ValueError else."""
    try:
        model, face, body, _image = load_student_modules(folder)
    except ModelFileError as e:
        raise ValueError(f"--init-from {folder}: {e}") from None
    if model.arch != arch:
        raise ValueError(f"--init-from {folder}: its student is {_describe(model.arch)}, this build's is "
                         f"{_describe(arch)} (give the same sizes, or start from a student of this architecture)")
    return face.state_dict(), body.state_dict()


def apply_start(face: FaceMorpher, body: BodyMorpher, start: tuple[dict, dict]) -> None:
    """Load the start's weights, exactly."""
    face.load_state_dict(start[0])
    body.load_state_dict(start[1])


def zero_alpha(body: BodyMorpher) -> None:
    """Make the body's blend weight zero everywhere: its output is then the warped image alone."""
    with torch.no_grad():
        body.last_linear.weight[ALPHA] = 0
        body.last_linear.bias[ALPHA] = 0

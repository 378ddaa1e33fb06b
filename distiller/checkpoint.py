"""The distiller's checkpoint: one file, written to a temporary name and renamed, so a kill never leaves a torn one.

It holds both students, the optimizer of the stage in progress, the position (stage, examples), the RNG state, the
elapsed time and the configuration: enough for the same command to resume where a killed run stopped.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

CHECKPOINT_FORMAT = "tha4bridge-distiller-1"


class CheckpointError(ValueError):
    """A file at the checkpoint's path that is not a distiller checkpoint."""


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    """The saved state, or None when there is no checkpoint yet."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a distiller checkpoint (delete it to start over)")
    return state

"""Choosing a poser from what a user typed: a character-model folder, or the word `demo`."""
from __future__ import annotations

from pathlib import Path

import torch

from .demo import DemoPoser
from .poser import Poser
from .student import StudentPoser

DEMO = "demo"


def load_poser(spec: str | Path = DEMO, device: str | torch.device = "auto", mode: str = "exact",
               name: str | None = None) -> Poser:
    """A folder → StudentPoser (a bad folder raises student.ModelFileError, one line); the word `demo` → the
    built-in procedural demo character (`mode` does not apply to it)."""
    if str(spec) == DEMO:
        return DemoPoser(device=device, name=name or DEMO)
    return StudentPoser(spec, device=device, mode=mode, name=name)

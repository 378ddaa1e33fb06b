"""Choosing a poser from what a user typed: a character-model folder, or the word `demo`."""
from __future__ import annotations

from pathlib import Path

import torch

from .defaults import DEMO
from .demo import DemoPoser
from .poser import Poser
from .student import StudentPoser

BACKENDS = ("torch", "onnxruntime")


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be {' or '.join(BACKENDS)}, got {backend!r}")


def load_poser(spec: str | Path = DEMO, device: str | torch.device = "auto", mode: str = "exact",
               name: str | None = None, backend: str = "torch", providers: str | None = None) -> Poser:
    """A folder → StudentPoser (a bad folder raises student.ModelFileError, one line); the word `demo` → the
    built-in procedural demo character (`mode` does not apply to it). backend="onnxruntime" → onnx.OnnxPoser
    on a folder or an exported .onnx file, `providers` tried in order (`device` and `mode` do not apply)."""
    check_backend(backend)
    if backend == "onnxruntime":
        if str(spec) == DEMO:
            raise ValueError("--backend onnxruntime runs exported students; the demo character is not one "
                             "(use --backend torch for it)")
        from .onnx.backend import DEFAULT_PROVIDERS, OnnxPoser  # optional: imports onnxruntime

        return OnnxPoser(spec, providers=providers or DEFAULT_PROVIDERS, name=name)
    if str(spec) == DEMO:
        return DemoPoser(device=device, name=name or DEMO)
    return StudentPoser(spec, device=device, mode=mode, name=name)

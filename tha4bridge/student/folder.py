"""The character-model folder: reading it, validating it, refusing a bad one with one line.

The format (files, YAML keys, state-dict keys and shapes, PNG conventions) is protocols/character_model.md.
Every refusal is a `ModelFileError` whose message names the file and the problem on one line, so the CLI and
the daemon can print it as it is. Nothing here runs code from a file: state dicts load with weights_only=True.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from torch import nn

from ..imaging import ImageError, load_character_png
from .network import BodyMorpher, FaceMorpher, StudentArch


class ModelFileError(ValueError):
    """A character-model folder that cannot be used. str() is one line naming the file and the problem."""


YAML_NAME = "character_model.yaml"
YAML_KEYS = ("character_image_file_name", "face_morpher_file_name", "body_morpher_file_name")


@dataclass
class CharacterModel:
    folder: Path
    image_path: Path
    face_path: Path
    body_path: Path
    arch: StudentArch = field(default_factory=StudentArch)


def read_character_yaml(folder: str | Path) -> CharacterModel:
    """The folder's YAML → the paths of its three files (each checked to exist) and its architecture."""
    folder = Path(folder)
    y = folder / YAML_NAME
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: not a folder (expected a character-model folder with {YAML_NAME})")
    if not y.is_file():
        raise ModelFileError(f"{y}: missing (a character-model folder needs {YAML_NAME})")
    try:
        doc = yaml.safe_load(y.read_text())
    except Exception as e:
        raise ModelFileError(f"{y}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ModelFileError(f"{y}: expected a mapping with keys {', '.join(YAML_KEYS)}")
    missing = [k for k in YAML_KEYS if not isinstance(doc.get(k), str)]
    if missing:
        raise ModelFileError(f"{y}: missing key {missing[0]}")
    arch = StudentArch()
    if doc.get("architecture") is not None:  # our exports of non-default sizes record their shape
        try:
            arch = StudentArch.from_dict(doc["architecture"])
        except Exception as e:
            raise ModelFileError(f"{y}: bad 'architecture' entry ({e})") from None
    inside = folder.resolve()
    for k in YAML_KEYS:  # a model folder is self-contained: a path that leaves it is refused, not followed
        target = (folder / doc[k]).resolve()
        if Path(doc[k]).is_absolute() or not target.is_relative_to(inside):
            raise ModelFileError(f"{y}: {k} '{doc[k]}' points outside the model folder "
                                 f"(name a file inside {folder})")
    paths = [folder / doc[k] for k in YAML_KEYS]
    for p in paths:
        if not p.is_file():
            raise ModelFileError(f"{p}: missing (named in {y.name})")
    return CharacterModel(folder, *paths, arch=arch)


def state_dict_mismatch(module: nn.Module, sd: dict) -> tuple[str, str, tuple | None, tuple | None] | None:
    """The first difference between `sd` and `module`'s own state dict, as (kind, key, got shape, expected
    shape) with kind "missing", "shape" or "unexpected"; None when keys and shapes are exactly the same.
    Shared by the student and teacher loaders, which each word the error for their own files."""
    want = module.state_dict()
    for k, v in want.items():
        if k not in sd:
            return "missing", k, None, tuple(v.shape)
        if tuple(sd[k].shape) != tuple(v.shape):
            return "shape", k, tuple(sd[k].shape), tuple(v.shape)
    for k in sd:
        if k not in want:
            return "unexpected", k, tuple(sd[k].shape), None
    return None


def _unsafe_global(path: Path) -> str | None:
    """The first non-tensor global a zip .pt would import (e.g. `posix.system`), read without loading it."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # an archive too damaged to list: the caller words that case
        return None
    return names[0] if names else None


def _read_state_dict(path: Path) -> dict:
    """torch.load with weights_only=True (a pickled object that would run code is refused, not run).

    Every failure is worded here, never by torch: its messages suggest turning weights_only off, which is
    exactly the advice a user must not follow for a file of unknown origin."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK"):  # a zip's start without its closing directory: cut short
            raise ModelFileError(f"{path}: truncated (a zip archive without its end; copy the file again)")
        raise ModelFileError(f"{path}: not a zip archive (PyTorch .pt files are zip archives; "
                             f"this one is empty, truncated or in another format)")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        name = _unsafe_global(path)
        if name is not None:
            raise ModelFileError(f"{path}: holds a non-tensor object `{name}`, refused "
                                 f"(model files may hold only tensors; nothing from it was run)") from None
        raise ModelFileError(f"{path}: a damaged PyTorch archive ({type(e).__name__} while reading it)") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelFileError(f"{path}: not a state dict of tensors")
    return sd


def load_state_dict_file(path: Path, module: nn.Module) -> None:
    """Load a plain state-dict .pt into `module`, refusing anything that is not exactly its keys and shapes."""
    sd = _read_state_dict(path)
    problem = state_dict_mismatch(module, sd)
    if problem is not None:  # worded for a character folder (the teacher's loader words the same check its own way)
        kind, k, got, expected = problem
        if kind == "missing":
            raise ModelFileError(f"{path}: missing key {k} (expected shape {expected})")
        if kind == "shape":
            raise ModelFileError(f"{path}: key {k} has shape {got}, expected {expected}")
        raise ModelFileError(f"{path}: unexpected key {k} (shape {got})")
    bad = [k for k, t in sd.items() if not torch.isfinite(t).all()]
    if bad:
        raise ModelFileError(f"{path}: key {bad[0]} holds NaN or infinite values")
    module.load_state_dict({k: t.float() for k, t in sd.items()})


def load_student_modules(folder: str | Path) -> tuple[CharacterModel, FaceMorpher, BodyMorpher, torch.Tensor]:
    """Read and validate a folder: (paths, face morpher, body morpher, character image), all on the CPU."""
    cm = read_character_yaml(folder)
    try:
        image = load_character_png(cm.image_path)
    except ImageError as e:
        raise ModelFileError(str(e)) from None
    face, body = FaceMorpher(cm.arch), BodyMorpher(cm.arch)
    load_state_dict_file(cm.face_path, face)
    load_state_dict_file(cm.body_path, body)
    return cm, face.eval(), body.eval(), image

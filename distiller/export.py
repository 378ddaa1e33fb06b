"""Write a student in the official character-model folder format (protocols/character_model.md), loadable by
StudentPoser and `tha4bridge serve`.

character_model.yaml (the three official keys, in order; plus `architecture` for non-default sizes),
character.png (a byte copy of the input image), face_morpher.pt and body_morpher.pt (plain state dicts).
"""
from __future__ import annotations

import os
import shutil
from collections import OrderedDict
from pathlib import Path

import torch
import yaml

from tha4bridge.imaging import save_png, to_rgba8
from tha4bridge.student import YAML_NAME, StudentArch


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _plain(state: dict) -> OrderedDict:
    """A state dict as the official files hold it: float32 CPU tensors of their own, nothing else attached."""
    return OrderedDict((k, v.detach().float().cpu().contiguous().clone()) for k, v in state.items())


def export_character_model(out: Path, face_state: dict, body_state: dict, arch: StudentArch,
                           image_path: str | None, image: torch.Tensor) -> Path:
    """`image_path` is copied byte for byte when given; otherwise `image` (official convention) is written."""
    out.mkdir(parents=True, exist_ok=True)
    png = out / "character.png"
    if image_path:
        if Path(image_path).resolve() != png.resolve():
            shutil.copyfile(image_path, png)
    else:
        save_png(to_rgba8(image[None].float().cpu())[0], png)
    _atomic_save(_plain(face_state), out / "face_morpher.pt")
    _atomic_save(_plain(body_state), out / "body_morpher.pt")
    doc = {"character_image_file_name": "character.png", "face_morpher_file_name": "face_morpher.pt",
           "body_morpher_file_name": "body_morpher.pt"}
    if not arch.is_official():
        doc["architecture"] = arch.to_dict()
    tmp = out / (YAML_NAME + ".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, out / YAML_NAME)
    return out

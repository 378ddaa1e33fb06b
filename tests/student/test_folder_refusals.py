"""Issue 15 items 1 and 8: a bad .pt and a YAML path that leaves the folder are refused in our own words."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tha4bridge.student import ModelFileError, read_character_yaml
from tha4bridge.student.folder import _read_state_dict


def refusal(path: Path) -> str:
    with pytest.raises(ModelFileError) as e:
        _read_state_dict(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    # torch's own wording advises turning the safety off: it must never reach the user
    assert "weights_only" not in msg and "Re-run" not in msg
    return msg


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo ran",))


def test_code_running_pickle_names_the_blocked_global(tmp_path):
    p = tmp_path / "face_morpher.pt"
    torch.save({"x": RunsCode()}, p)
    msg = refusal(p)
    assert "posix.system" in msg or "nt.system" in msg
    assert "non-tensor object" in msg and "refused" in msg


def test_zeros_truncated_and_legacy_files(tmp_path):
    zeros = tmp_path / "zeros.pt"
    with open(zeros, "wb") as f:  # what `truncate -s 1G` makes, smaller: a sparse file of zeros
        f.truncate(64 << 20)
    assert "not a zip archive" in refusal(zeros)

    good = tmp_path / "good.pt"
    torch.save({"w": torch.zeros(4096)}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "truncated" in refusal(cut)

    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(3)}, legacy, _use_new_zipfile_serialization=False)
    assert "not a zip archive" in refusal(legacy)

    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert "not a zip archive" in refusal(empty)
    assert set(_read_state_dict(good)) == {"w"}


def _folder(tmp_path: Path, face: str) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    for name in ("character.png", "body_morpher.pt"):
        (d / name).write_bytes(b"")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "face_morpher.pt").write_bytes(b"")
    (d / "character_model.yaml").write_text(
        f"character_image_file_name: character.png\nface_morpher_file_name: '{face}'\n"
        f"body_morpher_file_name: body_morpher.pt\n")
    return d


@pytest.mark.parametrize("face", ["../x/face_morpher.pt", "ABSOLUTE"])
def test_yaml_paths_are_confined_to_the_folder(tmp_path, face):
    if face == "ABSOLUTE":
        face = str(tmp_path / "x" / "face_morpher.pt")
    d = _folder(tmp_path, face)
    with pytest.raises(ModelFileError) as e:
        read_character_yaml(d)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == (f"{d / 'character_model.yaml'}: face_morpher_file_name '{face}' points outside the model "
                   f"folder (name a file inside {d})")


def test_yaml_path_inside_a_subfolder_is_fine(tmp_path):
    d = _folder(tmp_path, "nets/face_morpher.pt")
    (d / "nets").mkdir()
    (d / "nets" / "face_morpher.pt").write_bytes(b"")
    assert read_character_yaml(d).face_path == d / "nets" / "face_morpher.pt"

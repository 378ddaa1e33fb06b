"""The character-model folder: a good one reads, a bad one is refused in one line naming the file and the problem."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.shared import LAMBDA_00, needs_fixtures
from tha4bridge.student import (FaceMorpher, ModelFileError, StudentArch, StudentPoser, load_student_modules,
                                read_character_yaml, state_dict_mismatch)


def refused(folder: Path) -> str:
    with pytest.raises(ModelFileError) as e:
        StudentPoser(folder, device="cpu")
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def _edit_state_dict(path: Path, edit) -> None:
    sd = torch.load(path, map_location="cpu", weights_only=True)
    edit(sd)
    torch.save(sd, path)


# --- a good folder -----------------------------------------------------------------------------

@needs_fixtures
def test_good_folder_reads_paths_arch_and_image():
    cm = read_character_yaml(LAMBDA_00)
    assert (cm.image_path.name, cm.face_path.name, cm.body_path.name) == \
        ("character.png", "face_morpher.pt", "body_morpher.pt")
    assert cm.arch == StudentArch()  # the official files carry no architecture entry
    cm, face, body, image = load_student_modules(LAMBDA_00)
    assert image.shape == (4, 512, 512) and image.dtype == torch.float32
    assert not face.training and not body.training


def test_state_dict_mismatch_names_the_first_difference():
    face = FaceMorpher(StudentArch(face_width=4, face_layers=2))
    sd = face.state_dict()
    assert state_dict_mismatch(face, dict(sd)) is None
    missing = {k: v for k, v in sd.items() if k != "siren.last_linear.bias"}
    assert state_dict_mismatch(face, missing) == ("missing", "siren.last_linear.bias", None, (4,))
    assert state_dict_mismatch(face, {**sd, "siren.last_linear.bias": torch.zeros(5)}) == \
        ("shape", "siren.last_linear.bias", (5,), (4,))
    assert state_dict_mismatch(face, {**sd, "extra": torch.zeros(2)}) == ("unexpected", "extra", (2,), None)


# --- bad folders ---------------------------------------------------------------------------------

def test_not_a_folder(tmp_path):
    assert refused(tmp_path / "nowhere") == \
        f"{tmp_path / 'nowhere'}: not a folder (expected a character-model folder with character_model.yaml)"


def test_missing_file(good_copy):
    (good_copy / "body_morpher.pt").unlink()
    assert refused(good_copy) == f"{good_copy / 'body_morpher.pt'}: missing (named in character_model.yaml)"


def test_missing_yaml_and_yaml_key(good_copy):
    y = good_copy / "character_model.yaml"
    y.write_text("character_image_file_name: character.png\nface_morpher_file_name: face_morpher.pt\n")
    assert refused(good_copy) == f"{y}: missing key body_morpher_file_name"
    y.unlink()
    assert "character_model.yaml: missing" in refused(good_copy)


def test_bad_yaml_and_bad_architecture(good_copy):
    y = good_copy / "character_model.yaml"
    y.write_text("[unclosed\n")
    assert refused(good_copy).startswith(f"{y}: not valid YAML (")
    y.write_text("- a list\n")
    assert refused(good_copy) == f"{y}: expected a mapping with keys character_image_file_name, " \
                                 "face_morpher_file_name, body_morpher_file_name"
    y.write_text("character_image_file_name: character.png\nface_morpher_file_name: face_morpher.pt\n"
                 "body_morpher_file_name: body_morpher.pt\narchitecture: {face_depth: 3}\n")
    assert refused(good_copy).startswith(f"{y}: bad 'architecture' entry (")


def test_png_not_512_rgba(good_copy):
    png = good_copy / "character.png"
    Image.new("RGB", (512, 512)).save(png)
    assert refused(good_copy) == f"{png}: must be a 512x512 RGBA PNG, got 512x512 RGB"
    Image.new("RGBA", (256, 256)).save(png)
    assert refused(good_copy) == f"{png}: must be a 512x512 RGBA PNG, got 256x256 RGBA"


def test_state_dict_missing_extra_and_wrong_shape(good_copy):
    face = good_copy / "face_morpher.pt"
    _edit_state_dict(face, lambda sd: sd.pop("siren.last_linear.bias"))
    assert refused(good_copy) == f"{face}: missing key siren.last_linear.bias (expected shape (4,))"
    _edit_state_dict(face, lambda sd: sd.__setitem__("siren.last_linear.bias", torch.zeros(4)) or sd.__setitem__("extra.weight", torch.zeros(2)))
    assert refused(good_copy) == f"{face}: unexpected key extra.weight (shape (2,))"
    body = good_copy / "body_morpher.pt"
    _edit_state_dict(body, lambda sd: sd.__setitem__("last_linear.weight", torch.zeros(8, 90, 1, 1)))
    msg = refused(good_copy)
    assert msg.startswith(f"{face}:") or msg == f"{body}: key last_linear.weight has shape (8, 90, 1, 1), expected (7, 90, 1, 1)"


def test_wrong_shape_named_with_both_shapes(good_copy):
    body = good_copy / "body_morpher.pt"
    _edit_state_dict(body, lambda sd: sd.__setitem__("last_linear.weight", torch.zeros(8, 90, 1, 1)))
    assert refused(good_copy) == f"{body}: key last_linear.weight has shape (8, 90, 1, 1), expected (7, 90, 1, 1)"


def test_non_finite_weights(good_copy):
    body = good_copy / "body_morpher.pt"
    _edit_state_dict(body, lambda sd: sd["last_linear.bias"].fill_(float("nan")))
    assert refused(good_copy) == f"{body}: key last_linear.bias holds NaN or infinite values"


def test_truncated_and_non_zip_pt(good_copy):
    body = good_copy / "body_morpher.pt"
    data = body.read_bytes()
    body.write_bytes(data[: len(data) // 2])
    msg = refused(good_copy)
    assert msg.startswith(f"{body}: ") and "truncated" in msg
    body.write_bytes(b"this is not a checkpoint")
    msg = refused(good_copy)
    assert msg.startswith(f"{body}: ") and ("zip" in msg or "truncated" in msg)


def test_pickled_code_is_refused_not_run(good_copy, tmp_path):
    """weights_only=True: a .pt that would run code on load is refused in one line."""
    marker = tmp_path / "ran"
    body = good_copy / "body_morpher.pt"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"x": Evil()}, body)
    msg = refused(good_copy)
    assert msg.startswith(f"{body}: ") and not marker.exists()

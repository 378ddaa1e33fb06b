"""The reference modules: the official state-dict layout, and the plain forward pass against the official outputs."""
from __future__ import annotations

import numpy as np
import torch

from tests.shared import needs_fixtures
from tests.student.util import official_outputs, official_poses
from tha4bridge.imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS, psnr
from tha4bridge.student import BodyMorpher, FaceMorpher, StudentArch, paste_face


def _layout(module: torch.nn.Module) -> tuple[int, int]:
    sd = module.state_dict()
    return len(sd), sum(t.numel() for t in sd.values())


def test_official_architecture_has_the_official_state_dicts():
    """Tensor and parameter counts of the official files (protocols/character_model.md, "State dicts")."""
    face, body = FaceMorpher(), BodyMorpher()
    assert _layout(face) == (18, 121_476) and _layout(body) == (20, 331_567)
    assert face.state_dict()["siren.sine_layers.0.linear.weight"].shape == (128, 41, 1, 1)
    assert body.state_dict()["siren_layers.1.0.linear.weight"].shape == (180, 227, 1, 1)
    assert body.state_dict()["last_linear.weight"].shape == (7, 90, 1, 1)


def test_arch_round_trips_through_its_dict():
    arch = StudentArch(face_width=32, face_layers=3, body_widths=(16, 8, 8))
    assert StudentArch.from_dict(arch.to_dict()) == arch and not arch.is_official()
    assert StudentArch.from_dict({}) == StudentArch() and StudentArch().is_official()


def test_paste_face_overwrites_the_crop_only():
    image = torch.zeros(2, 4, 512, 512)
    face = torch.full((2, 4, 128, 128), 3.0)  # out of range on purpose: no clamp
    out = paste_face(image, face)
    assert (out[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] == 3.0).all()
    assert out.sum() == face.sum() and image.abs().sum() == 0  # nothing else touched, the input not modified


@needs_fixtures
def test_face_crop_matches_the_official_face_output(exact):
    ref_face = official_outputs("face")[46].astype(np.float32)
    face = exact.reference_forward(official_poses()[46])[5][0]
    assert psnr(face, ref_face) > 60.0


@needs_fixtures
def test_plain_forward_matches_the_official_final_image(exact):
    """Two poses (the zero pose and a random one): the plain forward takes seconds per frame on a CPU."""
    blended = official_outputs("blended")
    out = exact.reference_forward(official_poses()[[0, 47]])
    assert len(out) == 6  # [blended, alpha, color_change, warped, grid_change, face]
    for k, row in enumerate((0, 47)):
        assert psnr(out[0][k], blended[row].astype(np.float32)) >= 60.0

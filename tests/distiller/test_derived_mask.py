"""Issue 15 item 12: without --face-mask the mask is derived from the teacher, saved as a PNG a user can
inspect and pass back as --face-mask, and it sits on the character's face."""
from __future__ import annotations

import torch

from distiller.check import check_mask, check_pair
from distiller.targets import StudentTargets, derives_face_mask, face_mask_for, save_face_mask
from tests.shared import LAMBDA_00, needs_fixtures
from tha4bridge.imaging import load_face_mask
from tha4bridge.student import StudentPoser


@needs_fixtures
def test_derived_mask_round_trips_and_covers_the_face(tmp_path):
    targets = StudentTargets(StudentPoser(LAMBDA_00, device="cpu", mode="exact"))
    assert derives_face_mask(targets, "") and not derives_face_mask(targets, "given.png")
    mask = face_mask_for(targets, "")
    assert mask.shape == (4, 128, 128) and 0.05 < float(mask[0].mean()) < 0.9
    png = save_face_mask(mask, tmp_path / "face_mask_derived.png")
    assert torch.equal(load_face_mask(png), mask)  # what the user sees is what training used
    assert check_mask(png) == [] or all("covers almost" in p for p in check_mask(png))
    assert check_pair(LAMBDA_00 / "character.png", png) == []  # on this character's eyes and mouth


def test_build_with_a_teacher_folder_asks_only_for_the_image(tmp_path):
    from typer.testing import CliRunner

    from distiller.cli import app

    r = CliRunner().invoke(app, ["build", "--teacher", str(tmp_path), "--out", str(tmp_path / "out"),
                                 "--no-progress"])
    assert r.exit_code == 2
    assert "--image is needed with this teacher" in r.output and "derived from the teacher" in r.output

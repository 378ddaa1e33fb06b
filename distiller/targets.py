"""What the student learns from: training targets from any teacher.

* the THA4 teacher (a folder of the five official .pt files): the official targets (protocols/tha4_model.md,
  "Distillation");
* a student folder (re-distillation into a smaller student): its own face morpher and body morpher outputs;
* any other Poser (the built-in demo character): only rendered frames. The face target is the face region of the
  pose rendered with rotations and breathing zeroed (what the face morpher is asked: the expression, in place),
  and the body input is that same frame; warp and grid terms have no teacher counterpart and are left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tha4bridge.imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS, load_character_png, load_face_mask
from tha4bridge.pose import ROTATION_INPUT
from tha4bridge.poser import Poser, pick_device
from tha4bridge.student import StudentPoser, paste_face

from .student_train import TrainableBody, TrainableFace
from .teacher.teacher import TEACHER_FACE_COLS, TEACHER_FACE_ROWS, TeacherPoser, is_teacher_folder


def _inside(inner: slice, outer: slice) -> slice:
    return slice(inner.start - outer.start, inner.stop - outer.start)


# The student face region inside the teacher's 192 face output: rows 48:176, cols 32:160.
FACE_IN_TEACHER_CROP = (_inside(STUDENT_FACE_ROWS, TEACHER_FACE_ROWS), _inside(STUDENT_FACE_COLS, TEACHER_FACE_COLS))


@dataclass
class BodyTargets:
    input: torch.Tensor  # [n, 4, 512, 512]: what the student body morpher is fed (image with the teacher's face)
    final: torch.Tensor
    warped: torch.Tensor | None = None
    grid_change: torch.Tensor | None = None


def _plain(t: torch.Tensor | None) -> torch.Tensor | None:
    """Inference-mode tensors cannot meet autograd; a clone outside inference mode can."""
    return None if t is None else t.clone()


class Targets:
    """Base: a teacher for one character image."""

    kind = "poser"
    image_path: str | None = None  # the character PNG to copy into the export, when the teacher has one

    def __init__(self, poser: Poser):
        self.poser = poser
        self.device = poser.device

    @property
    def image(self) -> torch.Tensor:
        return self.poser.rest_image()

    @torch.inference_mode()
    def _face(self, pose: torch.Tensor) -> torch.Tensor:
        still = pose.clone()
        still[:, ROTATION_INPUT] = 0
        return self.poser.render(still)[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS]

    @torch.inference_mode()
    def _body(self, pose: torch.Tensor) -> BodyTargets:
        still = pose.clone()
        still[:, ROTATION_INPUT] = 0
        return BodyTargets(self.poser.render(still).clone(), self.poser.render(pose).clone())

    def face(self, pose: torch.Tensor) -> torch.Tensor:
        """[n, 4, 128, 128]: the student face region (STUDENT_FACE_ROWS/COLS) for pose[:, pose.FACE_INPUT]."""
        return _plain(self._face(pose.to(self.device)))

    def body(self, pose: torch.Tensor) -> BodyTargets:
        b = self._body(pose.to(self.device))
        return BodyTargets(*(_plain(t) for t in (b.input, b.final, b.warped, b.grid_change)))


class OfficialTargets(Targets):
    kind = "tha4"

    @torch.inference_mode()
    def _face(self, pose):
        rows, cols = FACE_IN_TEACHER_CROP
        return self.poser.face_outputs(pose).face[:, :, rows, cols]

    @torch.inference_mode()
    def _body(self, pose):
        o = self.poser.outputs(pose)
        return BodyTargets(o.face_morphed_full, o.final, o.warped, o.grid_change)


class StudentTargets(Targets):
    kind = "student"

    def __init__(self, poser: StudentPoser):
        super().__init__(poser)
        # The training-time forward is also the quickest plain one that returns every output (warp and grid too).
        self.face_net, self.body_net = TrainableFace(poser.face_morpher), TrainableBody(poser.body_morpher)

    @property
    def image_path(self) -> str:
        return str(self.poser.model.image_path)

    @torch.inference_mode()
    def _face(self, pose):
        return self.face_net(pose)

    @torch.inference_mode()
    def _body(self, pose):
        face = self.face_net(pose)
        image = paste_face(self.image.expand(pose.shape[0], -1, -1, -1), face)
        blended, _alpha, _color, warped, grid_change = self.body_net(image, pose)
        return BodyTargets(image, blended, warped, grid_change)


def make_targets(teacher: str, image_path: str, device: str | torch.device = "cpu",
                 teacher_mode: str = "auto") -> Targets:
    """`demo`, a folder of the five official .pt files (needs the character image), or a student folder."""
    device = pick_device(device)
    if teacher_mode == "auto":
        teacher_mode = "bf16" if device.type == "cuda" else "exact"
    if teacher == "demo":
        from tha4bridge.demo import DemoPoser

        return Targets(DemoPoser(device=device))
    folder = Path(teacher)
    if is_teacher_folder(folder):
        if not image_path:
            raise ValueError("--image is needed with the THA4 teacher (the character to distill)")
        return OfficialTargets(TeacherPoser.load(folder, load_character_png(image_path), device=device,
                                                 mode=teacher_mode))
    if (folder / "character_model.yaml").is_file():
        return StudentTargets(StudentPoser(folder, device=device, mode="exact"))
    raise ValueError(f"{teacher}: not 'demo', a folder with the five THA4 .pt files, or a student folder "
                     "(character_model.yaml)")


def face_mask_for(targets: Targets, mask_path: str) -> torch.Tensor:
    """[4, 128, 128] in {0, 1}: the given mask, the demo character's own, or (re-distilling a student) the pixels
    the teacher's face actually moves."""
    if mask_path:
        return load_face_mask(mask_path)
    if targets.kind == "poser" and targets.poser.name.startswith("demo"):
        from tha4bridge.demo import demo_face_mask

        return demo_face_mask()
    if targets.kind in ("student", "tha4"):  # no mask given: derive it from what the teacher's face moves
        return moving_face_mask(targets)
    raise ValueError("--face-mask is needed with this teacher")


def derives_face_mask(targets: Targets, mask_path: str) -> bool:
    """Whether face_mask_for derives the mask (the user should see it), rather than reading or shipping one."""
    return not mask_path and targets.kind in ("student", "tha4")


def save_face_mask(mask: torch.Tensor, path: str | Path) -> Path:
    """A [4, 128, 128] mask (as face_mask_for returns) → the 512x512 black/white RGB PNG a user would pass as
    --face-mask (white in the face region where the mask is 1), so a derived mask can be inspected and reused."""
    from PIL import Image

    full = np.zeros((512, 512, 3), np.uint8)
    full[STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = (mask[0].cpu().numpy() > 0.5)[..., None] * np.uint8(255)
    Image.fromarray(full, "RGB").save(path)
    return Path(path)


def moving_face_mask(targets: Targets, poses: int = 16) -> torch.Tensor:
    """Where the teacher's face changes over prior poses (std > 2% of the range), grown by 4 pixels."""
    from .poses import sample_prior

    faces = torch.cat([targets.face(p) for p in sample_prior(poses, torch.Generator().manual_seed(5)).split(8)])
    moving = (faces.std(dim=0).mean(dim=0) > 0.04).float()[None, None]
    grown = torch.nn.functional.max_pool2d(moving, 9, stride=1, padding=4)[0, 0]
    return grown[None].expand(4, -1, -1).contiguous().cpu()

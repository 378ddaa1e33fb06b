"""StudentPoser: a distilled character (a character-model folder) behind the `Poser` interface."""
from __future__ import annotations

from pathlib import Path

import torch

from ..poser import Poser, pick_device
from .folder import load_student_modules
from .network import paste_face
from .renderer import SirenRenderer


class StudentPoser(Poser):
    """Renders with `SirenRenderer` in `exact` or `fast` mode; keeps the modules for the reference forward."""

    def __init__(self, folder: str | Path, device: str | torch.device = "auto", mode: str = "exact",
                 name: str | None = None, mask: bool | None = None, two_rate: bool | None = None):
        """`mask`: compute only the pixels that can show (renderer lever 5); None: on in fast, off in exact.
        `two_rate`: the daemon shows it at two rates (body passes apart from compose passes); None: in fast."""
        self.model, face, body, image = load_student_modules(folder)
        super().__init__(name or Path(folder).resolve().name, pick_device(device))
        self.mode = mode
        self._two_rate = mode == "fast" if two_rate is None else two_rate
        self.face_morpher, self.body_morpher = face.to(self.device), body.to(self.device)
        self._image = image.to(self.device)
        self.renderer = SirenRenderer(face, body, self._image, mode=mode, device=self.device,
                                      mask=mode == "fast" if mask is None else mask)

    @staticmethod
    def load(folder, device="auto", mode="exact", name=None, mask=None) -> "StudentPoser":
        return StudentPoser(folder, device=device, mode=mode, name=name, mask=mask)

    def _render(self, pose: torch.Tensor) -> torch.Tensor:
        return self.renderer.render(pose)

    def _render_region(self, pose: torch.Tensor, region) -> torch.Tensor:
        return self.renderer.render(pose, region)  # at a cost near the crop's area (renderer.py, lever 6)

    def rest_image(self) -> torch.Tensor:
        return self._image

    # -- two rates (daemon/bodies.py): the body pass and the compose pass of a frame, apart -----------------
    @property
    def two_rate(self) -> bool:
        """Whether the daemon shows this student at two rates: in fast mode (exact renders every frame whole)."""
        return self._two_rate

    def body_pass(self, pose: torch.Tensor, region=None) -> torch.Tensor:
        """Body outputs [N, h, w, 7] of a sanitized pose (renderer.SirenRenderer.body_pass)."""
        return self.renderer.body_pass(pose, region)

    def compose_pass(self, pose: torch.Tensor, body: torch.Tensor | None, region=None, mix=None) -> torch.Tensor:
        """A frame [N, 4, h, w] from a sanitized pose's face and body outputs `body`, or the weighted sum of the
        (body outputs, weight) pairs in `mix` (made in the renderer's own buffer)."""
        return self.renderer.compose_pass(pose, body, region, mix)

    def reference_forward(self, pose: torch.Tensor) -> list[torch.Tensor]:
        """The plain module computation (the official data flow): body outputs then the face crop."""
        pose = self.prepare(pose)
        with torch.inference_mode():
            face = self.face_morpher(pose)
            image = paste_face(self._image.expand(pose.shape[0], -1, -1, -1), face)
            return self.body_morpher(image, pose) + [face]

    def describe(self) -> dict:
        d = super().describe()
        d.update(mode=self.mode, arithmetic=self.renderer.arithmetic_line(),
                 visibility_mask=self.renderer.mask is not None, folder=str(self.model.folder),
                 architecture=self.model.arch.to_dict())
        return d

"""The one interface every renderer implements: 45 named parameters in, RGBA frames out.

The daemon, the `render`/`bench` commands and the distiller (as a teacher) all talk to a `Poser`.
Frames are in the official THA4 convention: float32 [N, 4, H, W], linear RGB, premultiplied alpha,
every channel in [-1, 1]. `tha4bridge.imaging` turns them into what engines want (RGBA8 sRGB).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from .pose import NUM_PARAMETERS, PARAMETER_NAMES, PoseFixes, sanitize
from .region import FRAME, Region


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` → CUDA when present, else Apple's MPS, else CPU; anything else is passed to torch."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    d = torch.device(device)
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but this torch build sees no CUDA device")
    return d


class Poser(ABC):
    """A character that can be posed. Subclasses implement `_render` on a sanitized [N, 45] tensor."""

    parameter_names: tuple[str, ...] = PARAMETER_NAMES
    image_size: int = FRAME
    two_rate: bool = False  # body and compose passes apart (a student in fast mode: student/poser.py)

    def __init__(self, name: str, device: torch.device):
        self.name = name
        self.device = device
        # Every NaN/inf or out-of-range value repaired so far (reported by the daemon's stats).
        self.fixes = PoseFixes()

    def prepare(self, pose) -> torch.Tensor:
        """Sanitize a [45] or [N, 45] pose (numpy, list or tensor) into a float32 [N, 45] tensor on our device."""
        if isinstance(pose, torch.Tensor):
            pose = pose.detach().to("cpu", torch.float32).numpy()
        p, fixes = sanitize(np.asarray(pose, dtype=np.float32))
        self.fixes.add(fixes)
        if p.ndim == 1:
            p = p[None]
        return torch.from_numpy(p).to(self.device)

    def render(self, pose, region: Region | None = None) -> torch.Tensor:
        """Render one pose ([45]) or a batch ([N, 45]); returns float32 [N, 4, H, W] (official convention):
        the whole frame, or only the crop `region` (x, y, w, h in the full frame's pixels; RegionError if it
        does not fit), whose pixels equal the same pixels of the whole frame.

        The returned tensor may be a view into a buffer reused by the next call: copy it to keep it.
        """
        if region is not None:
            region = region.check(self.image_size, self.image_size, "region")
        return self.render_sanitized(self.prepare(pose), region)

    @torch.inference_mode()
    def render_sanitized(self, pose: torch.Tensor, region: Region | None = None) -> torch.Tensor:
        """`render` for a caller that sanitized already (the daemon does, once, where a pose enters its
        render path): pose is float32 [N, 45] on self.device, finite and in range; `region` checked."""
        if region is None:
            return self._render(pose)
        return self._render_region(pose, region)

    def _render_region(self, pose: torch.Tensor, region: Region) -> torch.Tensor:
        """A crop; posers that can render one at less cost than the whole frame override this."""
        return region.cut(self._render(pose))

    @abstractmethod
    def _render(self, pose: torch.Tensor) -> torch.Tensor:
        """pose: sanitized float32 [N, 45] on self.device."""

    @abstractmethod
    def rest_image(self) -> torch.Tensor:
        """The character image the poser animates: float32 [4, H, W], official convention."""

    def describe(self) -> dict:
        """A short description for `hello`/`inspect` (subclasses add to it)."""
        return {"name": self.name, "kind": type(self).__name__, "device": str(self.device),
                "width": self.image_size, "height": self.image_size, "parameters": NUM_PARAMETERS}

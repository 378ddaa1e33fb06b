"""The official distillation losses (protocols/tha4_model.md, "Distillation")."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import FACE_MASK_WEIGHT


def face_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """L1 plus FACE_MASK_WEIGHT × the L1 inside the face mask; the loss and its terms as floats."""
    diff = (pred - target).abs()
    l1 = diff.mean()
    masked = (diff * mask).mean()  # a mean over all elements, not normalized by the mask area (official)
    return l1 + FACE_MASK_WEIGHT * masked, {"l1": l1.item(), "masked_l1": masked.item()}


def body_loss(outs: list[torch.Tensor], t, weights: dict[str, float]) -> tuple[torch.Tensor, dict]:
    """The weighted sum of L1 terms of the student body's outputs against `t` (BodyTargets); the loss and its terms."""
    blended, _alpha, color_change, warped, grid_change = outs
    terms = {"blended": F.l1_loss(blended, t.final), "color_change": F.l1_loss(color_change, t.final)}
    if t.warped is not None:  # a Poser teacher (the demo) has no warp to imitate
        terms["warped"] = F.l1_loss(warped, t.warped)
        terms["grid_change"] = F.l1_loss(grid_change, t.grid_change)
    loss = sum(weights[k] * v for k, v in terms.items())
    return loss, {k: v.item() for k, v in terms.items()}

"""The SIREN pieces that the reference model, the fast renderer and the distiller's training forward share.

A student sine layer is a 1×1 convolution followed by sin(ω₀·x) with ω₀ = 30 (protocols/character_model.md,
"The student networks"). Three programs compute it: `network.py` plainly (concatenated inputs, convolutions),
`renderer.py` for speed without gradients, `distiller/student_train.py` for speed with gradients. What they must
agree on lives here, once:

* the pixel coordinates of the position input (`axis`, `position_grid`, `pixel_positions`);
* ω₀ folded into a layer's weights: sin(ω₀(Wx + b)) = sin((ω₀W)x + ω₀b) (`folded`);
* a level's first layer split along its input [previous features | x, y | pose] (`split_first_layer`), and the
  two terms that then need no per-pixel product: the position term, a vector per column plus a vector per row
  (x varies along columns, y along rows: `position_terms`), and the pose term, one vector per frame (`pose_term`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

OMEGA0 = 30.0


def axis(size: int, device=None) -> torch.Tensor:
    """[size] pixel-centre coordinates (2i + 1)/size − 1 in (−1, 1): the align_corners=False convention."""
    return (2.0 * torch.arange(size, dtype=torch.float32, device=device) + 1.0) / size - 1.0


def position_grid(size: int, device=None) -> torch.Tensor:
    """[2, size, size]: channel 0 = x (along columns), channel 1 = y (along rows); the network's input order."""
    c = axis(size, device)
    return torch.stack([c[None, :].expand(size, size), c[:, None].expand(size, size)])


def pixel_positions(size: int, device=None) -> torch.Tensor:
    """[size, size, 2] (x, y) per pixel, channels last and contiguous: the identity sampling grid of a warp."""
    return position_grid(size, device).permute(1, 2, 0).contiguous()


def folded(conv: nn.Conv2d, scale: float = OMEGA0) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1×1 convolution's (weight [out, in], bias [out]) times `scale` (ω₀ for a sine layer, 1 for the last
    linear layer). Multiplying a few thousand weights once replaces a multiply over every activation. Keeps the
    autograd graph (the distiller trains through it); callers that only render detach."""
    return conv.weight[:, :, 0, 0] * scale, conv.bias * scale


@dataclass
class FirstLayerWeights:
    """A level's first sine layer, ω₀ folded, split along its input channels (official order)."""

    feat: torch.Tensor  # [out, n_feat]: the previous level's features (empty on a first level)
    x: torch.Tensor  # [out]: the x input
    y: torch.Tensor  # [out]: the y input
    pose: torch.Tensor  # [out, P]
    bias: torch.Tensor  # [out]


def split_first_layer(conv: nn.Conv2d, n_feat: int) -> FirstLayerWeights:
    """Split a first layer whose input is [n_feat features | x, y | pose] into its parts."""
    w, b = folded(conv)
    return FirstLayerWeights(w[:, :n_feat], w[:, n_feat], w[:, n_feat + 1], w[:, n_feat + 2:], b)


def position_terms(size: int, w_x: torch.Tensor, w_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first layer's position contribution at pixel (row r, col c) is cols[c] + rows[r]:
    (cols [size, C], rows [size, C]) = (axis ⊗ w_x, axis ⊗ w_y). Two small tables instead of a product per pixel."""
    c = axis(size, w_x.device)[:, None]
    return c * w_x[None, :], c * w_y[None, :]


def pose_term(pose: torch.Tensor, w_pose: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """[N, C] = bias + pose [N, P] · w_pose [P, C]: the pose (the same at every pixel) and the bias, per frame.
    Only the first P pose values are read (the face morpher reads a prefix of the vector)."""
    return torch.addmm(bias, pose[:, : w_pose.shape[0]], w_pose)

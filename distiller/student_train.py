"""Training-time forward passes of the student modules (`tha4bridge.student.network`, official keys).

The same arithmetic as `FaceMorpher.forward`/`BodyMorpher.forward`, rearranged for speed while keeping the
parameters (and so the Adam state, checkpoints and exports) exactly the official ones:

* pixels × channels GEMMs (F.linear on [N, H·W, C]) instead of 1×1 convolutions on NCHW maps;
* the first layer of every level splits its input [previous features | x, y | pose]: the position part is one
  small product per level, the pose part one vector per example, and the previous features' product is taken
  before the bilinear upsampling (at a quarter of the pixels); level 0 has no per-pixel GEMM in its first layer;
* ω₀ = 30 is multiplied into the weights (a few thousand numbers) instead of into every activation.

The folding, the first-layer split and its position and pose terms are `tha4bridge.student.siren`'s, shared with
the real-time renderer; what stays here is what training needs (autograd, the fused sine-linear backward).

`TrainableFace`/`TrainableBody` wrap a FaceMorpher/BodyMorpher so DDP can wrap them in turn.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tha4bridge.student.network import (ALPHA, BODY_OUTPUT_CHANNELS, COLOR_CHANGE, GRID_CHANGE, BodyMorpher,
                                        FaceMorpher)
from tha4bridge.student.siren import folded, pose_term, position_terms, split_first_layer

from .teacher.warp import identity_grid


class _SineLinear(torch.autograd.Function):
    """sin(x·Wᵀ + b) on [P, C] rows. Saves the pre-activation and turns it into the cosine in place during the
    backward pass (autograd's own sin backward allocates a cosine tensor and a product: two more full passes)."""

    @staticmethod
    def forward(ctx, x, w, b):
        z = torch.addmm(b, x, w.t())
        ctx.save_for_backward(x, w, z)
        return torch.sin(z)

    @staticmethod
    def backward(ctx, grad):
        x, w, z = ctx.saved_tensors
        gz = z.cos_().mul_(grad)  # z is not needed again: a single backward pass (no double backward here)
        return gz @ w, gz.t() @ x, gz.sum(0)


def _sine_linear(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    n, p, c = h.shape
    return _SineLinear.apply(h.reshape(n * p, c), w, b).view(n, p, -1)


def _sine_level(layers, size: int, pose: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
    """One SIREN level at size × size on flattened pixels → [N, size·size, width].

    previous: None, or the previous level's features [N, p·p, C] at a smaller size p. The first layer's product
    with them is taken at the previous size and then upsampled: bilinear upsampling is linear with weights summing
    to one, so W·up(x) = up(W·x), at a quarter of the GEMM's cost.
    """
    first = split_first_layer(layers[0].linear, 0 if previous is None else previous.shape[-1])
    cols, rows = position_terms(size, first.x, first.y)  # [size, width] each
    position = (rows[:, None, :] + cols[None, :, :]).view(1, size * size, -1)
    z = position + pose_term(pose, first.pose.t(), first.bias)[:, None, :]
    if previous is not None:
        z = z + _upsample(previous @ first.feat.T, size)
    h = torch.sin(z)
    for layer in list(layers)[1:]:
        h = _sine_linear(h, *folded(layer.linear))
    return h


def _upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """[N, p·p, C] → [N, size·size, C], bilinear, align_corners=False (channels-last all along)."""
    n, pp, c = x.shape
    p = int(round(pp ** 0.5))
    up = F.interpolate(x.view(n, p, p, c).permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                       align_corners=False)
    return up.permute(0, 2, 3, 1).reshape(n, size * size, c)


class TrainableFace(nn.Module):
    def __init__(self, face: FaceMorpher):
        super().__init__()
        self.face = face

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        s = self.face.size
        pose = pose[:, :self.face.pose_size]
        h = _sine_level(self.face.siren.sine_layers, s, pose)
        out = F.linear(h, *folded(self.face.siren.last_linear, 1.0))  # [N, P, 4]
        return out.view(-1, s, s, 4).permute(0, 3, 1, 2)


class TrainableBody(nn.Module):
    def __init__(self, body: BodyMorpher):
        super().__init__()
        self.body = body

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> list[torch.Tensor]:
        n, s = pose.shape[0], self.body.sizes[-1]
        x = None
        for size, level in zip(self.body.sizes, self.body.siren_layers):
            x = _sine_level(level, size, pose, x)
        out = F.linear(x, *folded(self.body.last_linear, 1.0)).view(n, s, s, BODY_OUTPUT_CHANNELS)
        grid_change, alpha, color_change = out[..., GRID_CHANGE], out[..., ALPHA], out[..., COLOR_CHANGE]
        grid = identity_grid(s, s, image.device, image.dtype) + grid_change
        warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        alpha, color_change = alpha.permute(0, 3, 1, 2), color_change.permute(0, 3, 1, 2)
        blended = (1 - alpha) * warped + alpha * color_change
        return [blended, alpha, color_change, warped, grid_change.permute(0, 3, 1, 2)]

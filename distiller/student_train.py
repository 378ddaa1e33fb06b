"""Training-time forward passes of the student modules (the lead's `tha4bridge.student` modules, official keys).

The same arithmetic as `FaceMorpher.forward`/`BodyMorpher.forward`, rearranged for speed while keeping the
parameters (and so the Adam state, checkpoints and exports) exactly the official ones:

* pixels × channels GEMMs (F.linear on [N, H·W, C]) instead of 1×1 convolutions on NCHW maps;
* the first layer of every level splits its input [previous features | x, y | pose]: the position part is one
  small product per level, the pose part one vector per example, and the previous features' product is taken
  before the bilinear upsampling (at a quarter of the pixels); level 0 has no per-pixel GEMM in its first layer;
* ω0 = 30 is multiplied into the weights (a few thousand numbers) instead of into every activation.

`TrainableFace`/`TrainableBody` wrap a FaceMorpher/BodyMorpher so DDP can wrap them in turn.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tha4bridge.student import OMEGA0, BodyMorpher, FaceMorpher, position_grid

from .teacher.warp import identity_grid


def _flat_positions(size: int, device) -> torch.Tensor:
    """[size·size, 2] (x, y) per pixel, row-major."""
    return position_grid(size, device).permute(1, 2, 0).reshape(size * size, 2)


def _weight(conv: nn.Conv2d, scale: float = OMEGA0) -> tuple[torch.Tensor, torch.Tensor]:
    return conv.weight[:, :, 0, 0] * scale, conv.bias * scale


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


def _sine_level(layers, previous, pos: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """One SIREN level on flattened pixels → [N, P, width].

    previous: None, or (features [N, p·p, C] at the previous size p, this size s). The first layer's product with
    the previous features is taken at the previous size and then upsampled: bilinear upsampling is linear with
    weights summing to one, so W·up(x) = up(W·x), at a quarter of the GEMM's cost.
    """
    w, b = _weight(layers[0].linear)
    c = 0 if previous is None else previous[0].shape[-1]
    # Input channel order is [previous | x, y | pose] (official): split the first layer along it.
    z = (pos @ w[:, c:c + 2].T)[None] + (pose @ w[:, c + 2:].T + b)[:, None, :]
    if previous is not None:
        x, size = previous
        z = z + _upsample(x @ w[:, :c].T, size)
    h = torch.sin(z)
    for layer in list(layers)[1:]:
        h = _sine_linear(h, *_weight(layer.linear))
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
        h = _sine_level(self.face.siren.sine_layers, None, _flat_positions(s, pose.device), pose)
        out = F.linear(h, *_weight(self.face.siren.last_linear, 1.0))  # [N, P, 4]
        return out.view(-1, s, s, 4).permute(0, 3, 1, 2)


class TrainableBody(nn.Module):
    def __init__(self, body: BodyMorpher):
        super().__init__()
        self.body = body

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> list[torch.Tensor]:
        n = pose.shape[0]
        x, prev = None, 0
        for size, level in zip(self.body.sizes, self.body.siren_layers):
            x = _sine_level(level, None if x is None else (x, size), _flat_positions(size, pose.device), pose)
            prev = size
        out = F.linear(x, *_weight(self.body.last_linear, 1.0)).view(n, prev, prev, 7)
        grid_change, alpha, color_change = out[..., 0:2], out[..., 2:3], out[..., 3:7]
        grid = identity_grid(prev, prev, image.device, image.dtype) + grid_change
        warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        alpha, color_change = alpha.permute(0, 3, 1, 2), color_change.permute(0, 3, 1, 2)
        blended = (1 - alpha) * warped + alpha * color_change
        return [blended, alpha, color_change, warped, grid_change.permute(0, 3, 1, 2)]

"""Image warping by a predicted grid change, as every THA4 network does it.

How the grid is built and sampled: protocols/tha4_model.md, "Teacher networks".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_BASE_GRIDS: dict[tuple, torch.Tensor] = {}


def identity_grid(h: int, w: int, device, dtype) -> torch.Tensor:
    """[1, H, W, 2] sampling grid of the identity (align_corners=False), cached per size/device/dtype."""
    key = (h, w, torch.device(device), dtype)
    grid = _BASE_GRIDS.get(key)
    if grid is None:
        theta = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], device=device, dtype=dtype)
        grid = F.affine_grid(theta, [1, 1, h, w], align_corners=False)
        _BASE_GRIDS[key] = grid
    return grid


def warp(image: torch.Tensor, grid_change: torch.Tensor) -> torch.Tensor:
    """Sample `image` at identity + grid_change (channel 0 = x offset, 1 = y offset), border padding."""
    n, _, h, w = grid_change.shape
    # Always in float32: under bf16/fp16 autocast a half-precision grid would misplace samples by ~0.1 pixel.
    grid_change, image = grid_change.float(), image.float()
    grid = identity_grid(h, w, grid_change.device, torch.float32) + grid_change.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)

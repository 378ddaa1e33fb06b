"""A level's first sine layer as the renderer multiplies it (renderer.py lever 2): its position and pose parts
precomputed.
"""
from __future__ import annotations

import torch

from .siren import pose_term, position_terms, split_first_layer
from .windows import Window


class FirstLayer:
    """A level's first sine layer with its position and pose parts precomputed (lever 2)."""

    def __init__(self, conv: torch.nn.Conv2d, n_feat: int, size: int, low_size: int | None, device):
        split = split_first_layer(conv, n_feat)

        def dev(t: torch.Tensor) -> torch.Tensor:  # a float32 copy on the device, strides kept (the GEMM's bits)
            return t.detach().to(device, torch.float32).clone()

        self.width = split.bias.shape[0]
        self.w_x, self.w_y = dev(split.x), dev(split.y)  # weights of the x and y inputs [C]
        self.w_pose = dev(split.pose.t())  # [P, C]
        self.b = dev(split.bias)
        self.terms = position_terms(size, self.w_x, self.w_y)
        if n_feat:
            self.w_feat = dev(split.feat.t())  # [n_feat, C]
            self.low_terms = position_terms(low_size, self.w_x, self.w_y)
            # Upsampling ×2 clamps the source index on the border rows/columns, so there it reproduces
            # the first/last low-res coordinate instead of the true one: off by ∓1/(2·low_size).
            self.edge_x, self.edge_y = self.w_x / (2 * low_size), self.w_y / (2 * low_size)
            self.doubling = size == 2 * low_size

    def add_position_and_pose(self, out: torch.Tensor, pose: torch.Tensor, terms, first: bool) -> torch.Tensor:
        """out [N, H, W, C] (+)= x term per column + (y term + pose bias + bias) per row."""
        cols, rows = terms
        pb = pose_term(pose, self.w_pose, self.b)  # [N, C]
        rows = (rows[None] + pb[:, None, :])[:, :, None, :]  # [N, H, 1, C]
        if first:
            return torch.add(rows, cols, out=out)
        return out.add_(rows).add_(cols)

    def fix_edges(self, out: torch.Tensor, low: Window, low_size: int) -> None:
        """Correct the upsampled window's rows and columns that are the frame's border (only those clamp)."""
        if low.x0 == 0:
            out[:, :, 0].sub_(self.edge_x)
        if low.x1 == low_size:
            out[:, :, -1].add_(self.edge_x)
        if low.y0 == 0:
            out[:, 0].sub_(self.edge_y)
        if low.y1 == low_size:
            out[:, -1].add_(self.edge_y)

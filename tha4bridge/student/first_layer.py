"""A sine layer's weights as the renderer multiplies them (renderer.py levers 2 and 4): a level's first layer
with its position and pose parts precomputed, and the bias carried by a column of ones.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .siren import pose_term, position_terms, split_first_layer
from .windows import Window

HALF_PI = math.pi / 2


def with_bias_row(w: torch.Tensor, b: torch.Tensor | None, ones_out: bool) -> torch.Tensor:
    """[C_in, C_out] weights (+ bias) → [C_in + 1, C_out (+ 1)]: the row for the column of ones holds the
    bias; with `ones_out`, an extra output column with pre-activation π/2 (a column of ones after sin)."""
    k, c = w.shape
    out = torch.zeros(k + 1, c + int(ones_out), dtype=torch.float32, device=w.device)
    out[:k, :c] = w
    if b is not None:
        out[k, :c] = b
    if ones_out:
        out[k, c] = HALF_PI
    return out


class FirstLayer:
    """A level's first sine layer with its position and pose parts precomputed (lever 2).

    Pre-activations have C (+ 1, with `ones`) columns; with `ones`, the last is π/2 (the column of ones
    after sin)."""

    def __init__(self, conv: torch.nn.Conv2d, n_feat: int, size: int, low_size: int | None, device,
                 ones: bool = False):
        split = split_first_layer(conv, n_feat)
        k = int(ones)

        def pad(t: torch.Tensor) -> torch.Tensor:  # on the device, with a zero for the ones column
            return F.pad(t.detach().to(device, torch.float32), (0, k))

        self.width = split.bias.shape[0] + k
        self.w_x, self.w_y = pad(split.x), pad(split.y)  # weights of the x and y inputs [C (+ 1)]
        self.w_pose = pad(split.pose.t())  # [P, C (+ 1)]
        self.b = pad(split.bias)
        if ones:
            self.b[-1] = HALF_PI
        self.terms = position_terms(size, self.w_x, self.w_y)
        if n_feat:
            # The previous level's activations bring their own column of ones: weight 0 (no double bias).
            self.w_feat = F.pad(pad(split.feat.t()), (0, 0, 0, k))  # [n_feat (+ 1), C (+ 1)]
            self.low_terms = position_terms(low_size, self.w_x, self.w_y)
            # Upsampling ×2 clamps the source index on the border rows/columns, so there it reproduces
            # the first/last low-res coordinate instead of the true one: off by ∓1/(2·low_size).
            self.edge_x, self.edge_y = self.w_x / (2 * low_size), self.w_y / (2 * low_size)
            self.doubling = size == 2 * low_size

    def add_position_and_pose(self, out: torch.Tensor, pose: torch.Tensor, terms, first: bool) -> torch.Tensor:
        """out [N, H, W, C + 1] (+)= x term per column + (y term + pose bias + bias) per row."""
        cols, rows = terms
        pb = pose_term(pose, self.w_pose, self.b)  # [N, C + 1]
        rows = (rows[None] + pb[:, None, :])[:, :, None, :]  # [N, H, 1, C + 1]
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

"""The shared SIREN pieces against the plain computation they stand for."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tha4bridge.student.network import SineLayer
from tha4bridge.student.siren import (OMEGA0, axis, folded, pixel_positions, pose_term, position_grid,
                                      position_terms, split_first_layer)


def test_axis_is_pixel_centres_align_corners_false():
    assert axis(4).tolist() == [-0.75, -0.25, 0.25, 0.75]


def test_position_grid_is_x_then_y_and_matches_affine_grid():
    g = position_grid(3)
    assert (g[0, 1] == axis(3)).all() and (g[1, :, 1] == axis(3)).all()  # x along columns, y along rows
    identity = F.affine_grid(torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]), [1, 1, 8, 8], align_corners=False)
    assert torch.allclose(pixel_positions(8), identity[0], atol=1e-6)
    assert pixel_positions(8).is_contiguous()


def test_folded_weights_give_the_sine_layer():
    torch.manual_seed(0)
    layer = SineLayer(5, 3, first=False)
    x = torch.randn(7, 5)
    w, b = folded(layer.linear)
    expect = layer(x[:, :, None, None])[:, :, 0, 0]
    assert torch.allclose(torch.sin(x @ w.T + b), expect, atol=1e-5)


def test_first_layer_terms_add_up_to_the_layer_on_concatenated_inputs():
    """[features | x, y | pose] through the convolution == features·W + per-column + per-row + per-frame terms."""
    torch.manual_seed(0)
    n_feat, size, n, pose_size = 3, 4, 2, 6
    conv = torch.nn.Conv2d(n_feat + 2 + pose_size, 5, 1)
    feat, pose = torch.randn(n, n_feat, size, size), torch.randn(n, pose_size)
    x = torch.cat([feat, position_grid(size)[None].expand(n, -1, -1, -1),
                   pose[:, :, None, None].expand(-1, -1, size, size)], dim=1)
    expect = (OMEGA0 * conv(x)).permute(0, 2, 3, 1)  # [N, H, W, C]
    with torch.no_grad():
        s = split_first_layer(conv, n_feat)
        cols, rows = position_terms(size, s.x, s.y)
        got = (torch.einsum("nfhw,cf->nhwc", feat, s.feat) + cols[None, None, :, :] + rows[None, :, None, :]
               + pose_term(pose, s.pose.t(), s.bias)[:, None, None, :])
    assert torch.allclose(got, expect, atol=1e-4)


def test_pose_term_reads_a_prefix_of_the_pose():
    w, b = torch.randn(3, 4), torch.randn(4)
    pose = torch.randn(2, 10)
    assert torch.allclose(pose_term(pose, w, b), pose[:, :3] @ w + b, atol=1e-6)

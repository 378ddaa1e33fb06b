"""The three encoder-decoder networks of the THA4 teacher: eyebrow decomposer, eyebrow morphing combiner, face morpher.

All three share one trunk (protocols/tha4_model.md, "Teacher networks"): a 3x3 conv block, stride-2 downsample
blocks to the bottleneck, the pose tiled and concatenated there, a conv block plus five residual blocks, and
transposed-conv upsample blocks back to full size. Heads read the final 64-channel map. Module names mirror the
official state-dict keys exactly, so the official `.pt` files load with `load_state_dict(strict=True)`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from tha4bridge.pose import EYEBROW, TEACHER_FACE_INPUT

from .warp import warp

# The pose widths the bottlenecks take, so the weights' shapes too (524 = 512 + 12 and 539 = 512 + 27 input channels):
# the lengths of the slices the teacher feeds them.
EYEBROW_POSE_SIZE = EYEBROW.stop - EYEBROW.start  # 12
FACE_POSE_SIZE = TEACHER_FACE_INPUT.stop - TEACHER_FACE_INPUT.start  # 27


def conv3_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.InstanceNorm2d(cout, affine=True), nn.ReLU())


def downsample_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.InstanceNorm2d(cout, affine=True), nn.ReLU())


class TransposedConv(nn.ConvTranspose2d):
    """ConvTranspose2d on ATen's native kernel rather than oneDNN, on the CPU in float32/float64.

    Why: torch 1.13.1, the official environment, ran transposed convolutions on this kernel (current torch sends
    them to oneDNN). These networks amplify last-bit differences, so the kernel decides which float32 result one
    gets: with oneDNN's, our teacher equals the official code run on the same torch bit for bit; with this one it
    is 63-76 dB from the official code under torch 1.13.1 and 1-3 dB closer to the fixture's official outputs
    (benchmarks/compare_official_teacher.py). It is no slower here.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
            return super().forward(x)
        return torch.ops.aten.slow_conv_transpose2d(x, self.weight, list(self.kernel_size), self.bias,
                                                    list(self.stride), list(self.padding),
                                                    list(self.output_padding), list(self.dilation))


def upsample_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(TransposedConv(cin, cout, 4, 2, 1, bias=False), nn.InstanceNorm2d(cout, affine=True),
                         nn.ReLU())


class ResnetBlock(nn.Module):
    """x + [conv, IN, ReLU, conv, IN]; no activation after the sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.resnet_path = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        return x + self.resnet_path(x)


def alpha_head() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(64, 1, 3, 1, 1), nn.Sigmoid())


def color_head() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(64, 4, 3, 1, 1), nn.Tanh())


def grid_head() -> nn.Conv2d:
    return nn.Conv2d(64, 2, 3, 1, 1, bias=False)


class EncoderDecoder(nn.Module):
    """The shared trunk: image [N, in, S, S] (+ pose [N, P]) → features [N, 64, S, S]."""

    def __init__(self, in_channels: int, image_size: int, bottleneck_size: int, pose_size: int = 0,
                 num_bottleneck_blocks: int = 6, max_channels: int = 512, start_channels: int = 64):
        super().__init__()
        self.pose_size = pose_size

        def channels(size: int) -> int:
            return min(start_channels * image_size // size, max_channels)

        self.downsample_blocks = nn.ModuleList([conv3_block(in_channels, start_channels)])
        size = image_size
        while size > bottleneck_size:
            self.downsample_blocks.append(downsample_block(channels(size), channels(size // 2)))
            size //= 2
        c = channels(bottleneck_size)
        self.bottleneck_blocks = nn.ModuleList([conv3_block(c + pose_size, c)])
        self.bottleneck_blocks.extend(ResnetBlock(c) for _ in range(num_bottleneck_blocks - 1))
        self.upsample_blocks = nn.ModuleList()
        while size < image_size:
            self.upsample_blocks.append(upsample_block(channels(size), channels(size * 2)))
            size *= 2
        assert math.log2(image_size // bottleneck_size) == len(self.upsample_blocks)

    def forward(self, image: torch.Tensor, pose: torch.Tensor | None = None) -> torch.Tensor:
        x = image
        for block in self.downsample_blocks:
            x = block(x)
        if self.pose_size:
            n, _, h, w = x.shape
            x = torch.cat([x, pose[:, :, None, None].expand(n, self.pose_size, h, w)], dim=1)
        for block in self.bottleneck_blocks:
            x = block(x)
        for block in self.upsample_blocks:
            x = block(x)
        return x


def blend(color: torch.Tensor, alpha: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """color·α + image·(1−α)."""
    return color * alpha + image * (1.0 - alpha)


def head_blend(features: torch.Tensor, alpha_head: nn.Module, color_head: nn.Module,
               image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A colour change and its α from two heads, blended over `image` → (result, α, color)."""
    alpha, color = alpha_head(features), color_head(features)
    return blend(color, alpha, image), alpha, color


def rgb_only_blend(top: torch.Tensor, bottom: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Blend RGB of `top` over `bottom` with α; the result keeps the bottom layer's alpha channel."""
    rgb = top[:, :3] * alpha + bottom[:, :3] * (1.0 - alpha)
    return torch.cat([rgb, bottom[:, 3:4]], dim=1)


class EyebrowDecomposer(nn.Module):
    """Face crop [N, 4, 128, 128] → 6 tensors: eyebrow layer/alpha/color, background layer/alpha/color."""

    def __init__(self):
        super().__init__()
        self.body = EncoderDecoder(in_channels=4, image_size=128, bottleneck_size=16)
        self.background_layer_alpha = alpha_head()
        self.background_layer_color_change = color_head()
        self.eyebrow_layer_alpha = alpha_head()
        self.eyebrow_layer_color_change = color_head()

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        f = self.body(image)
        background, bg_alpha, bg_color = head_blend(f, self.background_layer_alpha,
                                                    self.background_layer_color_change, image)
        eb_alpha = self.eyebrow_layer_alpha(f)
        eb_color = self.eyebrow_layer_color_change(f)
        # The eyebrow layer swaps the roles: the image is the "color" that α keeps.
        eyebrow = blend(image, eb_alpha, eb_color)
        return [eyebrow, eb_alpha, eb_color, background, bg_alpha, bg_color]


class EyebrowMorphingCombiner(nn.Module):
    """(background, eyebrow layer, eyebrow pose P[EYEBROW] [N, 12]) → 8 tensors; index 2 feeds the face morpher."""

    def __init__(self):
        super().__init__()
        self.body = EncoderDecoder(in_channels=8, image_size=128, bottleneck_size=16,
                                   pose_size=EYEBROW_POSE_SIZE)
        self.morphed_eyebrow_layer_grid_change = grid_head()
        self.morphed_eyebrow_layer_alpha = alpha_head()
        self.morphed_eyebrow_layer_color_change = color_head()
        self.combine_alpha = alpha_head()

    def forward(self, background: torch.Tensor, eyebrow: torch.Tensor, pose: torch.Tensor) -> list[torch.Tensor]:
        f = self.body(torch.cat([background, eyebrow], dim=1), pose)
        grid_change = self.morphed_eyebrow_layer_grid_change(f)
        warped = warp(eyebrow, grid_change)
        morphed, alpha, color = head_blend(f, self.morphed_eyebrow_layer_alpha, self.morphed_eyebrow_layer_color_change,
                                           warped)
        combine_alpha = self.combine_alpha(f)
        eyebrow_image = rgb_only_blend(morphed, background, combine_alpha)
        no_combine_alpha = rgb_only_blend(morphed, background, (morphed[:, 3:4] + 1.0) * 0.5)
        return [eyebrow_image, combine_alpha, no_combine_alpha, morphed, alpha, color, warped, grid_change]


class FaceMorpher(EncoderDecoder):
    """FaceMorpher08: face crop [N, 4, 192, 192] + pose P[TEACHER_FACE_INPUT] [N, 27] → 8 tensors at 192; index 0 is
    the face.

    The trunk's blocks sit at the top level (no `body.` prefix in the official keys), hence the subclass.
    """

    def __init__(self):
        super().__init__(in_channels=4, image_size=192, bottleneck_size=24, pose_size=FACE_POSE_SIZE)
        self.iris_mouth_grid_change = grid_head()
        self.iris_mouth_color_change = color_head()
        self.iris_mouth_alpha = alpha_head()
        self.eye_color_change = color_head()
        self.eye_alpha = alpha_head()

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> list[torch.Tensor]:
        f = super().forward(image, pose)
        grid_change = self.iris_mouth_grid_change(f)
        im0 = warp(image, grid_change)
        im1, im_alpha, im_color = head_blend(f, self.iris_mouth_alpha, self.iris_mouth_color_change, im0)
        out, eye_alpha, eye_color = head_blend(f, self.eye_alpha, self.eye_color_change, im1)
        return [out, eye_alpha, eye_color, im1, im_alpha, im_color, im0, grid_change]

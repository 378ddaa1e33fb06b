"""The two U-Nets of the THA4 teacher: body morpher (Morpher00, 256 px) and upscaler (Upscaler02, 512 px).

A diffusion-style U-Net (protocols/tha4_model.md, "Teacher networks"): GroupNorm + SiLU residual blocks modulated by
a time embedding (t is always 0 here, but its layers exist in the weights and are evaluated) and by the 6
rotation/breathing values (pose.ROTATION_INPUT), attention at 16x16 and in the middle. Module names mirror the
official state-dict keys.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .warp import warp

EMBED = 256  # width of the time and condition embeddings


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels), channels, eps=1e-5)


class SinusoidalEmbedding(nn.Module):
    """t [N] → [N, dim]: cos of t·f_k then sin of t·f_k, f_k = exp(−ln(10000)·k/(dim/2 − 1))."""

    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half) / (half - 1)),
                             persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t[:, None].float() * self.freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def _scale_shift(layers: nn.Module, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale, shift = layers(emb)[:, :, None, None].chunk(2, dim=1)
    return scale, shift


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, modulated by the time and condition embeddings; optional ×2 down/up resampling."""

    def __init__(self, cin: int, cout: int, resample: str | None = None):
        super().__init__()
        self.resample = resample
        self.norm0 = group_norm(cin)
        self.conv0 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.cond0_layers = nn.Sequential(nn.SiLU(), nn.Linear(EMBED, 2 * cout))
        self.norm1 = group_norm(cout)
        self.conv1 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.cond1_layers = nn.Sequential(nn.SiLU(), nn.Linear(EMBED, 2 * cout))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor, c_emb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(self._resample(F.silu(self.norm0(x))))
        s0, b0 = _scale_shift(self.cond0_layers, t_emb)
        s1, b1 = _scale_shift(self.cond1_layers, c_emb)
        h = self.norm1(h) * (1.0 + s0) + b0
        h = h * (1.0 + s1) + b1
        h = self.conv1(F.silu(h))
        return self.skip(self._resample(x)) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all pixels (8 heads), residual."""

    def __init__(self, channels: int, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, *_embeddings) -> torch.Tensor:
        n, c, h, w = x.shape
        d = c // self.heads
        # "new order": split q, k, v along channels first, then into heads; q and k each scaled by d^(-1/4).
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3 * c, h * w).chunk(3, dim=1)
        scale = 1.0 / math.sqrt(math.sqrt(d))
        q = (q * scale).reshape(n * self.heads, d, h * w)
        k = (k * scale).reshape(n * self.heads, d, h * w)
        weight = torch.softmax(torch.einsum("bct,bcs->bts", q, k), dim=-1)
        a = torch.einsum("bts,bcs->bct", weight, v.reshape(n * self.heads, d, h * w))
        return x + self.conv(a.reshape(n, c, h, w))


class Wrapped(nn.Module):
    """The official middle block keeps its attention layers under `.module` (key `middle_blocks.1.module.*`)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x, *embeddings):
        return self.module(x, *embeddings)


class DownLevel(nn.Module):
    def __init__(self, cin: int, cout: int, attention: bool, downsample: bool):
        super().__init__()
        self.res_blocks = nn.ModuleList([ResBlock(cin, cout)])
        if attention:
            self.attention_blocks = nn.ModuleList([AttentionBlock(cout)])
        if downsample:
            self.downsample = ResBlock(cout, cout, "down")


class UpLevel(nn.Module):
    def __init__(self, cins: list[int], cout: int, attention: bool, upsample: bool):
        super().__init__()
        self.resnet_blocks = nn.ModuleList([ResBlock(cin, cout) for cin in cins])
        if attention:
            self.attention_blocks = nn.ModuleList([AttentionBlock(cout) for _ in cins])
        if upsample:
            self.upsample = ResBlock(cout, cout, "up")


class UNet(nn.Module):
    """image [N, in, S, S] + condition [N, 6] (+ an optional tensor added after first_conv) → [N, out, S, S]."""

    def __init__(self, in_channels: int, out_channels: int, model_channels: int, channel_mult: tuple[int, ...],
                 attention_levels: tuple[int, ...], cond_size: int = 6, middle_res_blocks: int = 4):
        super().__init__()
        self.time_embed = nn.Sequential(SinusoidalEmbedding(model_channels), nn.Linear(model_channels, EMBED),
                                        nn.SiLU(), nn.Linear(EMBED, EMBED))
        self.cond_embed = nn.Sequential(nn.Linear(cond_size, EMBED), nn.SiLU(), nn.Linear(EMBED, EMBED))
        self.first_conv = nn.Conv2d(in_channels, model_channels, 3, 1, 1)

        widths = [model_channels * m for m in channel_mult]
        last = len(widths) - 1
        skips = [model_channels]
        c = model_channels
        self.down_blocks = nn.ModuleList()
        for i, w in enumerate(widths):
            self.down_blocks.append(DownLevel(c, w, i in attention_levels, downsample=i != last))
            c = w
            skips.append(c)
            if i != last:
                skips.append(c)

        middle: list[nn.Module] = [ResBlock(c, c)]
        for _ in range(middle_res_blocks - 1):
            middle += [Wrapped(AttentionBlock(c)), ResBlock(c, c)]
        self.middle_blocks = nn.ModuleList(middle)

        self.up_blocks = nn.ModuleList()
        for i in reversed(range(len(widths))):
            w = widths[i]
            cins = []
            for _ in range(2):
                cins.append(c + skips.pop())
                c = w
            self.up_blocks.append(UpLevel(cins, w, i in attention_levels, upsample=i != 0))
        self.last = nn.Sequential(group_norm(c), nn.SiLU(), nn.Conv2d(c, out_channels, 3, 1, 1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, added: torch.Tensor | None = None) -> torch.Tensor:
        t_emb = self.time_embed(torch.zeros(x.shape[0], device=x.device))
        c_emb = self.cond_embed(cond)
        h = self.first_conv(x)
        if added is not None:
            h = h + added
        hs = [h]
        for level in self.down_blocks:
            for j, block in enumerate(level.res_blocks):
                h = block(h, t_emb, c_emb)
                if hasattr(level, "attention_blocks"):
                    h = level.attention_blocks[j](h)
                hs.append(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h, t_emb, c_emb)
                hs.append(h)
        for block in self.middle_blocks:
            h = block(h, t_emb, c_emb)
        for level in self.up_blocks:
            for j, block in enumerate(level.resnet_blocks):
                h = block(torch.cat([h, hs.pop()], dim=1), t_emb, c_emb)
                if hasattr(level, "attention_blocks"):
                    h = level.attention_blocks[j](h)
            if hasattr(level, "upsample"):
                h = level.upsample(h, t_emb, c_emb)
        return self.last(h)


def split_output(out: torch.Tensor, image: torch.Tensor) -> list[torch.Tensor]:
    """Teacher channel order: direct [0:4), grid change [4:6), alpha logit [6:7).

    → [merged, α, warped, grid change, direct]."""
    direct, grid_change = out[:, 0:4], out[:, 4:6]
    alpha = torch.sigmoid(out[:, 6:7])
    warped = warp(image, grid_change)
    merged = direct * alpha + warped * (1.0 - alpha)
    return [merged, alpha, warped, grid_change, direct]


class BodyMorpher(nn.Module):
    """Morpher00: face-morphed image + pose[ROTATION_INPUT] → [merged, alpha, warped, grid_change, direct], @256."""

    def __init__(self):
        super().__init__()
        self.body = UNet(4, 7, model_channels=64, channel_mult=(1, 2, 4, 4, 4), attention_levels=(4,))

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> list[torch.Tensor]:
        return split_output(self.body(image, pose), image)


class Upscaler(nn.Module):
    """Upscaler02: refines the 256 result at 512 from the face-morphed rest image; warps the rest image itself."""

    def __init__(self):
        super().__init__()
        self.body = UNet(4, 7, model_channels=32, channel_mult=(1, 2, 4, 8, 8, 8), attention_levels=(5,))
        self.coarse_image_conv = nn.Conv2d(10, 32, 3, 1, 1)

    def forward(self, rest_image: torch.Tensor, coarse_posed: torch.Tensor, coarse_grid: torch.Tensor,
                pose: torch.Tensor) -> list[torch.Tensor]:
        coarse = torch.cat([coarse_posed, warp(rest_image, coarse_grid), coarse_grid], dim=1)
        return split_output(self.body(rest_image, pose, self.coarse_image_conv(coarse)), rest_image)

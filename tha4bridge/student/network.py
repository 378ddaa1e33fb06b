"""The THA4 student ("mode_14") as PyTorch modules, read top to bottom next to the paper's Figure 2.

Two SIRENs (sine-activated per-pixel MLPs, ω₀ = 30 everywhere) replace the five-network teacher:

* FaceMorpher: (x, y, pose[FACE_INPUT]) at 128×128 → the RGBA face crop (imaging.STUDENT_FACE_ROWS/COLS).
* BodyMorpher: three levels (128 → 256 → 512). Each level sees its pixel position and the full pose; levels
  after the first also see the previous level's features, bilinearly upsampled. The last linear layer gives
  7 channels per pixel: a warp (GRID_CHANGE), a blend weight (ALPHA) and a colour (COLOR_CHANGE). The output is
  the input image warped by the grid change, blended with the colour by alpha.
* Inference: paste the face crop into the character image (a hard overwrite), run the body morpher.

This is the reference forward pass and nothing else: the modules carry the official state-dict keys
(protocols/character_model.md, "State dicts"), the distiller trains them, and the real-time renderer
(`renderer.py`) runs the same arithmetic rearranged for speed from their weights.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS
from ..pose import FACE_INPUT, NUM_PARAMETERS
from .siren import OMEGA0, position_grid

# The body morpher's 7 output channels (official order; the teacher's differs).
GRID_CHANGE, ALPHA, COLOR_CHANGE = slice(0, 2), slice(2, 3), slice(3, 7)
BODY_OUTPUT_CHANNELS = COLOR_CHANGE.stop


@dataclass
class StudentArch:
    """Student sizes. The defaults are the official architecture (exports load in the official code)."""

    face_width: int = 128
    face_layers: int = 8
    body_sizes: tuple[int, ...] = (128, 256, 512)
    body_widths: tuple[int, ...] = (360, 180, 90)
    body_layers: int = 3  # sine layers per level (≥ 2)

    def is_official(self) -> bool:
        return self == StudentArch()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["body_sizes"], d["body_widths"] = list(self.body_sizes), list(self.body_widths)
        return d

    @staticmethod
    def from_dict(d: dict) -> "StudentArch":
        d = dict(d)
        d["body_sizes"] = tuple(int(s) for s in d.get("body_sizes", StudentArch.body_sizes))
        d["body_widths"] = tuple(int(w) for w in d.get("body_widths", StudentArch.body_widths))
        return StudentArch(**d)


def warp(image: torch.Tensor, grid_change: torch.Tensor) -> torch.Tensor:
    """Sample `image` at (identity + grid_change): bilinear, border padding, align_corners=False."""
    n, _, h, w = grid_change.shape
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=image.device).expand(n, 2, 3)
    base = F.affine_grid(identity, [n, 2, h, w], align_corners=False)
    grid = base + grid_change.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


class SineLayer(nn.Module):
    """1×1 convolution then sin(ω0·x). Init as in SIREN: the first layer U(−1/in, 1/in), others
    U(−√(6/in)/ω0, √(6/in)/ω0), so activations stay well spread through depth."""

    def __init__(self, cin: int, cout: int, first: bool):
        super().__init__()
        self.linear = nn.Conv2d(cin, cout, 1)
        bound = 1.0 / cin if first else math.sqrt(6.0 / cin) / OMEGA0
        nn.init.uniform_(self.linear.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(OMEGA0 * self.linear(x))


def last_linear(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")  # std √(2/in), as the official He init
    return conv


class Siren(nn.Module):
    def __init__(self, cin: int, width: int, layers: int, cout: int):
        super().__init__()
        self.sine_layers = nn.ModuleList(
            [SineLayer(cin if i == 0 else width, width, first=(i == 0)) for i in range(layers)])
        self.last_linear = last_linear(width, cout)

    def forward(self, x):
        for layer in self.sine_layers:
            x = layer(x)
        return self.last_linear(x)


class FaceMorpher(nn.Module):
    """pose[FACE_INPUT] → face crop [N, 4, 128, 128] (official convention; no output activation)."""

    size = STUDENT_FACE_ROWS.stop - STUDENT_FACE_ROWS.start  # 128: the face crop, square

    def __init__(self, arch: StudentArch = StudentArch()):
        super().__init__()
        self.pose_size = FACE_INPUT.stop
        self.siren = Siren(2 + self.pose_size, arch.face_width, arch.face_layers, 4)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        n, s = pose.shape[0], self.size
        pos = position_grid(s, pose.device)[None].expand(n, 2, s, s)
        x = torch.cat([pos, pose[:, :self.pose_size, None, None].expand(-1, -1, s, s)], dim=1)
        return self.siren(x)


class BodyMorpher(nn.Module):
    """(image [N, 4, 512, 512], pose [N, NUM_PARAMETERS]) → [blended, alpha, color_change, warped, grid_change]."""

    def __init__(self, arch: StudentArch = StudentArch()):
        super().__init__()
        self.sizes, widths = arch.body_sizes, arch.body_widths
        extra = 2 + NUM_PARAMETERS  # position + pose, at every level
        self.siren_layers = nn.ModuleList()
        for i, width in enumerate(widths):
            cin = extra if i == 0 else width + extra
            cout = widths[i + 1] if i + 1 < len(widths) else width  # a level's last layer feeds the next
            layers = [SineLayer(cin, width, first=(i == 0))]
            layers += [SineLayer(width, width, first=False) for _ in range(arch.body_layers - 2)]
            layers += [SineLayer(width, cout, first=False)]
            self.siren_layers.append(nn.Sequential(*layers))
        self.last_linear = last_linear(widths[-1], BODY_OUTPUT_CHANNELS)

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> list[torch.Tensor]:
        n = pose.shape[0]
        x = None
        for size, level in zip(self.sizes, self.siren_layers):
            pos_pose = torch.cat([position_grid(size, pose.device)[None].expand(n, 2, size, size),
                                  pose[:, :, None, None].expand(-1, -1, size, size)], dim=1)
            if x is not None:  # previous features first, then position and pose (official order)
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                pos_pose = torch.cat([x, pos_pose], dim=1)
            x = level(pos_pose)
        out = self.last_linear(x)
        grid_change, alpha, color_change = out[:, GRID_CHANGE], out[:, ALPHA], out[:, COLOR_CHANGE]
        warped = warp(image, grid_change)
        blended = (1 - alpha) * warped + alpha * color_change
        return [blended, alpha, color_change, warped, grid_change]


def paste_face(image: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """A copy of `image` [N, 4, 512, 512] with the face crop hard-overwritten (no blend, no clamp)."""
    out = image.clone()
    out[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = face
    return out

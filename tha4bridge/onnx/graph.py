"""The student as one traceable graph for ONNX: the reference data flow, or our rearranged one.

`RearrangedStudent` computes what `student.network` computes (the official forward pass), rearranged for a
graph runtime the way `student.renderer` rearranges it for PyTorch, minus what only pays with buffers we own:

* channels-last matrices: every sine layer is one [N·H·W, C] × [C, C'] product (MatMul + Add, which ONNX
  Runtime fuses into one Gemm) with ω₀ folded into the weights, instead of a 1×1 Conv over NCHW;
* first layers without a product: the position part is a column table plus a row table and the pose part one
  vector per frame (`siren.position_terms`, `siren.pose_term`), broadcast-added;
* low-resolution mixing: the next level's first layer multiplies the previous level's features at the *low*
  resolution, adds the pose term there (a constant per frame, which bilinear upsampling keeps exactly), and
  only then upsamples; the high-resolution position tables are added after the upsample, so no border fix is
  needed (the renderer adds them before and corrects the border; here one more broadcast add is cheaper);
* the face pasted by concatenation (top | left, face, right | bottom) rather than a scatter into a copy;
* a crop (`region`): each level computes only the window its successor reads (`student.windows.level_windows`),
  upsamples it and cuts the next window out; output [N, 4, h, w], the whole frame's pixels there.

`benchmarks/bench_onnx.py` measures each against `ReferenceStudent`, the plain modules traced as they are.
Inputs: pose float32 [N, 45]; output: float32 [N, 4, 512, 512], the official convention (linear RGB,
premultiplied alpha, [-1, 1]). The character image is a constant inside the graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS
from ..pose import NUM_PARAMETERS
from ..region import Region
from ..student.network import ALPHA, COLOR_CHANGE, GRID_CHANGE, BodyMorpher, FaceMorpher, paste_face
from ..student.windows import Window, level_windows
from ..student.siren import folded, pixel_positions, position_terms, split_first_layer


class ReferenceStudent(nn.Module):
    """The official data flow, traced as it is: face morpher, paste, body morpher; output 0 of the body."""

    def __init__(self, face: FaceMorpher, body: BodyMorpher, image: torch.Tensor):
        super().__init__()
        self.face, self.body = face, body
        self.register_buffer("character", image[None].float())

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        image = paste_face(self.character.expand(pose.shape[0], -1, -1, -1), self.face(pose))
        return self.body(image, pose)[0]


@dataclass(frozen=True)
class GraphLevers:
    """Rearrangements that can be switched off, so that benchmarks/bench_onnx.py measures what each buys."""

    position_tables: bool = True  # off: one product over [x, y, pose] per pixel, as the modules do
    low_res_mixing: bool = True  # off: upsample the features, then multiply at the high resolution (needs tables)
    paste_by_concat: bool = True  # off: the modules' paste (a copy with the face region overwritten)


class _First(nn.Module):
    """A level's first sine layer split into its parts (ω₀ folded): features, position tables, pose, bias."""

    def __init__(self, conv: nn.Conv2d, n_feat: int, size: int):
        super().__init__()
        s = split_first_layer(conv, n_feat)
        # Lever off: the per-pixel product over [x, y, pose] (positions [1, H, W, 2], weights [2 + P, C]).
        self.register_buffer("positions", pixel_positions(size)[None])
        self.register_buffer("w_xy_pose", torch.cat([s.x[None], s.y[None], s.pose.t()]).detach().contiguous())
        cols, rows = position_terms(size, s.x.detach(), s.y.detach())
        self.register_buffer("cols", cols[None, None])  # [1, 1, W, C]: x varies along columns
        self.register_buffer("rows", rows[None, :, None])  # [1, H, 1, C]
        self.register_buffer("w_pose", s.pose.detach().t().contiguous())  # [P, C]
        self.register_buffer("bias", s.bias.detach().clone())
        self.register_buffer("w_feat", s.feat.detach().t().contiguous() if n_feat else torch.zeros(0))

    def pose_term(self, pose: torch.Tensor) -> torch.Tensor:
        """[N, 1, 1, C]: bias + the pose's contribution, the same at every pixel."""
        return (pose[:, : self.w_pose.shape[0]] @ self.w_pose + self.bias)[:, None, None]

    def tables(self, win: Window) -> tuple[torch.Tensor, torch.Tensor]:
        """(cols [1, 1, w, C], rows [1, h, 1, C]) over a window (no Slice for the whole level)."""
        if (win.x0, win.y0, win.x1, win.y1) == (0, 0, self.cols.shape[2], self.rows.shape[1]):
            return self.cols, self.rows
        return self.cols[:, :, win.x0:win.x1], self.rows[:, win.y0:win.y1]

    def position_and_pose(self, pose: torch.Tensor, tables: bool, win: Window | None = None) -> torch.Tensor:
        """[N, H, W, C]: position and pose contributions plus the bias, by tables or by a per-pixel product."""
        if tables:
            cols, rows = self.tables(win or Window(0, 0, self.cols.shape[2], self.rows.shape[1]))
            return cols + rows + self.pose_term(pose)
        n, (h, w) = pose.shape[0], self.positions.shape[1:3]
        p = pose[:, : self.w_pose.shape[0], None, None].permute(0, 2, 3, 1).expand(-1, h, w, -1)
        return torch.cat([self.positions.expand(n, -1, -1, -1), p], dim=3) @ self.w_xy_pose + self.bias


def _sine_stack(x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """x: pre-activations [M, C] → sin, then (matrix product + bias, sin) per layer."""
    x = torch.sin(x)
    for w, b in layers:
        x = torch.sin(x @ w + b)
    return x


class RearrangedStudent(nn.Module):
    """Same pixels as `ReferenceStudent` (to float32 rounding), fewer passes over them."""

    def __init__(self, face: FaceMorpher, body: BodyMorpher, image: torch.Tensor, levers: GraphLevers = GraphLevers(),
                 region: Region | None = None):
        super().__init__()
        self.levers = levers
        self.face_size = face.size
        face_convs = [m.linear for m in face.siren.sine_layers]
        self.face_first = _First(face_convs[0], 0, face.size)
        self.face_hidden = self._pack("face_hidden", face_convs[1:], sine=True)
        self.face_last = self._pack("face_last", [face.siren.last_linear], sine=False)
        self.sizes = list(body.sizes)
        self.firsts = nn.ModuleList()
        self.hidden = []
        for i, (size, seq) in enumerate(zip(self.sizes, body.siren_layers)):
            convs = [m.linear for m in seq]
            n_feat = convs[0].in_channels - (2 + NUM_PARAMETERS) if i else 0  # previous level's features
            self.firsts.append(_First(convs[0], n_feat, size))
            self.hidden.append(self._pack(f"body{i}_hidden", convs[1:], sine=True))
        self.body_last = self._pack("body_last", [body.last_linear], sine=False)
        self.register_buffer("character", image[None].float())
        self.register_buffer("base_grid", pixel_positions(self.sizes[-1])[None])  # [1, H, W, 2]
        # Each level's window (the whole level without a crop) when the levels double in size and the tables and
        # low-res mixing are on; otherwise the whole-frame ablation path below, which has no crop.
        doubling = all(b == 2 * a for a, b in zip(self.sizes, self.sizes[1:]))
        windowed = doubling and levers.low_res_mixing and levers.position_tables
        if region is not None and not windowed:
            raise ValueError("a crop export needs levels that double in size and the default graph levers")
        self.windows = level_windows(self.sizes, region) if windowed else None

    def _pack(self, tag: str, convs, sine: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Folded [C_in, C_out] weights and biases as buffers (constants in the graph)."""
        out = []
        for j, conv in enumerate(convs):
            w, b = folded(conv) if sine else folded(conv, 1.0)
            self.register_buffer(f"{tag}{j}_w", w.detach().t().contiguous())
            self.register_buffer(f"{tag}{j}_b", b.detach().clone())
            out.append((f"{tag}{j}_w", f"{tag}{j}_b"))
        return out

    def _layers(self, names) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(getattr(self, w), getattr(self, b)) for w, b in names]

    def _face(self, pose: torch.Tensor) -> torch.Tensor:
        """[N, 4, 128, 128] face crop."""
        f, s = self.face_first, self.face_size
        pre = f.position_and_pose(pose, self.levers.position_tables).reshape(-1, f.bias.shape[0])
        x = _sine_stack(pre, self._layers(self.face_hidden))
        (w, b), = self._layers(self.face_last)
        return (x @ w + b).reshape(-1, s, s, 4).permute(0, 3, 1, 2)

    def _paste(self, face: torch.Tensor) -> torch.Tensor:
        """The character image with the face crop overwritten, built by concatenation (no scatter)."""
        img = self.character.expand(face.shape[0], -1, -1, -1)
        if not self.levers.paste_by_concat:
            return paste_face(img, face)
        r, c = STUDENT_FACE_ROWS, STUDENT_FACE_COLS
        band = torch.cat([img[:, :, r, : c.start], face, img[:, :, r, c.stop:]], dim=3)
        return torch.cat([img[:, :, : r.start], band, img[:, :, r.stop:]], dim=2)

    def _body(self, pose: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if self.windows is not None:
            return self._body_windows(pose, image)
        x = None  # the ablation path: a lever off, whole frames only
        for i, size in enumerate(self.sizes):
            f = self.firsts[i]
            width = f.bias.shape[0]
            if x is None:
                pre = f.position_and_pose(pose, self.levers.position_tables)
            else:  # upsample the features, mix at this resolution
                low = self.sizes[i - 1]
                up = F.interpolate(x.reshape(-1, low, low, x.shape[1]).permute(0, 3, 1, 2), size=(size, size),
                                   mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
                pre = up @ f.w_feat + f.position_and_pose(pose, self.levers.position_tables)
            x = _sine_stack(pre.reshape(-1, width), self._layers(self.hidden[i]))
        return self._blend(x, image, Window(0, 0, self.sizes[-1], self.sizes[-1]))

    def _body_windows(self, pose: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Mix at the low resolution (with the per-frame pose term, which bilinear upsampling keeps exactly),
        upsample the level's window, cut the next window out of it (a crop only), add the position tables."""
        x = None
        for i, win in enumerate(self.windows):
            f = self.firsts[i]
            width = f.bias.shape[0]
            if x is None:
                pre = f.position_and_pose(pose, True, win)
            else:
                low = self.windows[i - 1]
                mixed = (x @ f.w_feat).reshape(-1, low.h, low.w, width) + f.pose_term(pose)
                up = F.interpolate(mixed.permute(0, 3, 1, 2), size=(2 * low.h, 2 * low.w), mode="bilinear",
                                   align_corners=False).permute(0, 2, 3, 1)
                dy, dx = win.y0 - 2 * low.y0, win.x0 - 2 * low.x0
                if (dy, dx, win.h, win.w) != (0, 0, 2 * low.h, 2 * low.w):  # a whole frame needs no Slice
                    up = up[:, dy:dy + win.h, dx:dx + win.w]
                cols, rows = f.tables(win)
                pre = up + cols + rows
            x = _sine_stack(pre.reshape(-1, width), self._layers(self.hidden[i]))
        return self._blend(x, image, self.windows[-1])

    def _blend(self, x: torch.Tensor, image: torch.Tensor, win: Window) -> torch.Tensor:
        """The last layer over the window's pixels x, the warp of the whole image, the blend: [N, 4, h, w]."""
        (w, b), = self._layers(self.body_last)
        y = (x @ w + b).reshape(-1, win.h, win.w, 7)
        grid = self.base_grid
        if (win.h, win.w) != tuple(grid.shape[1:3]):  # a crop: its part of the identity warp
            grid = grid[:, win.y0:win.y1, win.x0:win.x1]
        warped = F.grid_sample(image, y[..., GRID_CHANGE] + grid, mode="bilinear",
                               padding_mode="border", align_corners=False)
        alpha = y[..., ALPHA].permute(0, 3, 1, 2)
        color = y[..., COLOR_CHANGE].permute(0, 3, 1, 2)
        return warped + alpha * (color - warped)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        return self._body(pose, self._paste(self._face(pose)))

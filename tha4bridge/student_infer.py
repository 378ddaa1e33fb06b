"""Real-time student inference: the arithmetic of `student.py`, rearranged for speed.

Same result, less work. What each rearrangement buys is measured by `benchmarks/bench_student.py`.

1. Channels-last matrices. A 1×1 convolution over an image is a matrix product of the pixels [N·H·W, C]
   with the weights [C, C']; keeping every activation as one contiguous [pixels, channels] matrix lets
   each layer be a single GEMM into a preallocated buffer followed by an in-place `sin`, with no layout
   copies between layers.
2. ω0 folded into the weights: sin(30·(Wx + b)) = sin((30W)x + 30b), so no separate scaling pass.
3. The first layer of every level reads [features?, x, y, pose]. Its position part is a per-column plus
   per-row vector (x varies along columns, y along rows) and its pose part is one bias vector per frame,
   so that layer costs two broadcast adds instead of a GEMM over 47 channels.
4. A 1×1 convolution commutes with bilinear upsampling (both linear, interpolation weights sum to 1), so
   the next level's first layer runs on the previous level's features at the *lower* resolution, and
   only its (already mixed) output is upsampled: 4× fewer multiply-adds for that layer.
5. Buffers are allocated once per batch size and reused; the character image with the face pasted in
   lives in one buffer whose face region alone is rewritten each frame.

`fast` mode runs the wide hidden layers (≥ 128 inputs, where the GEMM dominates: the face morpher
and the body's first level) as bfloat16 GEMMs (AMX/AVX-512-BF16 on recent CPUs, tensor cores on
GPUs). A plain bfloat16 cast measured 33 dB because ω0 = 30 amplifies rounding, and letting the bf16
product carry the bias measured 35 dB: here the product carries x·W only and the bias is added in
float32 before sin, which keeps ≥ 40 dB against `exact`. Narrow layers (the 256/512 levels) are bound
by memory passes, not arithmetic, so they stay float32 (bf16 there measured slower: the extra dtype
conversions cost more than the GEMM saves).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .imaging import FACE_COLS, FACE_ROWS
from .student import OMEGA0, BodyMorpher, FaceMorpher


def _axis(size: int, device) -> torch.Tensor:
    return (2.0 * torch.arange(size, dtype=torch.float32, device=device) + 1.0) / size - 1.0


HALF_PI = math.pi / 2


def _with_bias_row(w: torch.Tensor, b: torch.Tensor | None, ones_out: bool) -> torch.Tensor:
    """[C_in, C_out] weights (+ bias) → [C_in + 1, C_out (+ 1)]: activations carry a column of ones whose
    row holds the bias (lever 6); with `ones_out`, one more output column with pre-activation π/2, so
    sin() rewrites the next layer's column of ones itself."""
    k, c = w.shape
    out = torch.zeros(k + 1, c + int(ones_out), dtype=torch.float32, device=w.device)
    out[:k, :c] = w
    if b is not None:
        out[k, :c] = b
    if ones_out:
        out[k, c] = HALF_PI
    return out


BF16_MIN_WIDTH = 128


class _FirstLayer:
    """sin(ω0·(W·[feat, x, y, pose] + b)) with the position and pose parts precomputed (lever 3).

    Its output has C + 1 columns; the extra one gets pre-activation π/2 (the column of ones after sin)."""

    def __init__(self, conv: torch.nn.Conv2d, n_feat: int, size: int, device):
        w = conv.weight.detach()[:, :, 0, 0].to(device, torch.float32).t() * OMEGA0  # [n_feat + 2 + P, C]
        pad = lambda t: F.pad(t, (0, 1))  # noqa: E731  (a zero for the ones column)
        # The previous level's activations bring their own column of ones: weight 0 (no bias in the mix).
        self.w_feat = pad(F.pad(w[:n_feat], (0, 0, 0, 1))) if n_feat else None  # [n_feat + 1, C + 1]
        c = _axis(size, device)
        self.col = pad(c[:, None] * w[n_feat][None, :])  # [W, C + 1]: the x term per column
        self.col[:, -1] = HALF_PI
        self.row = pad(c[:, None] * w[n_feat + 1][None, :])  # [H, C + 1]: the y term per row
        self.w_pose = pad(w[n_feat + 2:].contiguous())  # [P, C + 1]
        self.b = pad(conv.bias.detach().to(device, torch.float32) * OMEGA0)
        self.width = self.b.shape[0]

    def pose_rows(self, pose: torch.Tensor) -> torch.Tensor:
        """[N, H, 1, C + 1]: the y term plus this frame's pose bias, per row."""
        pb = torch.addmm(self.b, pose[:, : self.w_pose.shape[0]], self.w_pose)
        return (self.row[None] + pb[:, None, :])[:, :, None, :]


class SirenRenderer:
    def __init__(self, face: FaceMorpher, body: BodyMorpher, image: torch.Tensor, mode: str = "exact",
                 device: torch.device | str = "cpu"):
        if mode not in ("exact", "fast"):
            raise ValueError(f"mode must be 'exact' or 'fast', got {mode!r}")
        self.mode, self.device = mode, torch.device(device)
        dev = self.device

        def hidden(conv):
            """One hidden sine layer: (GEMM weights, float32 bias or None), ω0 folded in (lever 2)."""
            w = conv.weight.detach()[:, :, 0, 0].to(dev, torch.float32).t() * OMEGA0
            b = conv.bias.detach().to(dev, torch.float32) * OMEGA0
            if mode == "fast" and w.shape[0] >= BF16_MIN_WIDTH:
                return _with_bias_row(w, None, True).to(torch.bfloat16), F.pad(b, (0, 1), value=HALF_PI)
            return _with_bias_row(w, b, True), None

        def last(conv):
            w = conv.weight.detach()[:, :, 0, 0].to(dev, torch.float32).t()
            return _with_bias_row(w, conv.bias.detach().to(dev, torch.float32), False)

        # Face morpher: one level at 128.
        layers = [m.linear for m in face.siren.sine_layers]
        self.face_size = face.size
        self.face_first = _FirstLayer(layers[0], 0, face.size, dev)
        self.face_hidden = [hidden(c) for c in layers[1:]]
        self.face_last = last(face.siren.last_linear)

        # Body morpher: levels at body.sizes; a level's last sine layer feeds the next level's first.
        self.sizes = list(body.sizes)
        self.levels = []
        for i, (size, seq) in enumerate(zip(self.sizes, body.siren_layers)):
            convs = [m.linear for m in seq]
            n_feat = 0 if i == 0 else convs[0].in_channels - (2 + 45)
            self.levels.append((_FirstLayer(convs[0], n_feat, size, dev), [hidden(c) for c in convs[1:]]))
        self.body_last = last(body.last_linear)

        s = self.sizes[-1]
        c = _axis(s, dev)
        self.base_grid = torch.stack([c[None, :].expand(s, s), c[:, None].expand(s, s)], dim=-1)  # [H, W, 2]
        self.image = image.to(dev, torch.float32)
        self._buffers: dict[int, dict[str, torch.Tensor]] = {}

    # -- buffers ------------------------------------------------------------------------------------
    def _buf(self, n: int) -> dict[str, torch.Tensor]:
        b = self._buffers.get(n)
        if b is None:
            b = {"image": self.image[None].repeat(n, 1, 1, 1)}  # face region rewritten per frame
            self._buffers = {n: b}  # keep one batch size: the daemon's is steady
        return b

    def _tmp(self, buf: dict, key: str, shape, dtype=torch.float32) -> torch.Tensor:
        t = buf.get(key)
        if t is None or t.shape != torch.Size(shape) or t.dtype != dtype:
            t = torch.empty(shape, dtype=dtype, device=self.device)
            buf[key] = t
        return t

    # -- the layers ---------------------------------------------------------------------------------
    def _sine_stack(self, pre: torch.Tensor, layers, buf, tag: str) -> torch.Tensor:
        """pre: [M, C + 1] float32 pre-activation of a level's first layer. Runs sin, then
        (GEMM, sin) per layer; returns the last layer's float32 activations."""
        x = pre.sin_()
        for j, (w, b) in enumerate(layers):
            out = self._tmp(buf, f"{tag}{j % 2}:{w.shape[1]}", (x.shape[0], w.shape[1]))  # ping-pong
            if b is None:  # float32, the bias rides in the GEMM
                torch.mm(x, w, out=out)
            else:  # bf16 product of x·W alone; the bias is added in float32 before sin
                xb = self._tmp(buf, f"{tag}b:{x.shape[1]}", x.shape, torch.bfloat16).copy_(x)
                prod = self._tmp(buf, f"{tag}p:{w.shape[1]}", out.shape, torch.bfloat16)
                torch.mm(xb, w, out=prod)
                out.copy_(prod).add_(b)
            x = out.sin_()
        return x

    def _first(self, layer: _FirstLayer, pose, size, feat_up, buf, tag) -> torch.Tensor:
        """The first layer's pre-activation [N·size², C + 1] at `size` (plus upsampled mixed features)."""
        n, c = pose.shape[0], layer.width
        rows = layer.pose_rows(pose)  # [N, H, 1, C + 1]
        if feat_up is None:
            out = self._tmp(buf, tag, (n, size, size, c))
            torch.add(rows, layer.col, out=out)
        else:
            out = feat_up.add_(rows).add_(layer.col)
        return out.view(-1, c)

    def face(self, pose: torch.Tensor, buf) -> torch.Tensor:
        """[N, 128, 128, 4] face crop (channels last)."""
        n, s = pose.shape[0], self.face_size
        x = self._first(self.face_first, pose, s, None, buf, "f0")
        x = self._sine_stack(x, self.face_hidden, buf, "fh")
        out = self._tmp(buf, "fout", (x.shape[0], 4))
        torch.mm(x, self.face_last, out=out)
        return out.view(n, s, s, 4)

    def body(self, pose: torch.Tensor, image: torch.Tensor, buf) -> torch.Tensor:
        """Blended frame [N, 512, 512, 4] (channels last) from the face-pasted image [N, 4, 512, 512]."""
        n = pose.shape[0]
        feat_up = None
        x = None
        for i, (size, (first, hidden)) in enumerate(zip(self.sizes, self.levels)):
            x = self._first(first, pose, size, feat_up, buf, f"b{i}")
            x = self._sine_stack(x, hidden, buf, f"b{i}h")
            if i + 1 < len(self.sizes):
                # Lever 4: mix with the next level's feature weights here, at the lower resolution.
                nxt = self.levels[i + 1][0]
                mixed = self._tmp(buf, f"b{i}m", (x.shape[0], nxt.w_feat.shape[1]))
                torch.mm(x, nxt.w_feat, out=mixed)
                nchw = mixed.view(n, size, size, -1).permute(0, 3, 1, 2)  # channels-last memory
                up = F.interpolate(nchw, size=(self.sizes[i + 1],) * 2, mode="bilinear", align_corners=False)
                feat_up = up.permute(0, 2, 3, 1)
                if not feat_up.is_contiguous():  # keep the [pixels, channels] layout (lever 1)
                    feat_up = feat_up.contiguous()
        s = self.sizes[-1]
        y = self._tmp(buf, "bout", (x.shape[0], 7))
        torch.mm(x, self.body_last, out=y)
        y = y.view(n, s, s, 7)
        grid = torch.add(y[..., 0:2], self.base_grid)
        warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        warped = warped.permute(0, 2, 3, 1)
        alpha, color = y[..., 2:3], y[..., 3:7]
        # blended = (1 − α)·warped + α·color, written channels-last.
        out = self._tmp(buf, "blend", (n, s, s, 4))
        torch.sub(color, warped, out=out)
        return out.mul_(alpha).add_(warped)

    @torch.inference_mode()
    def render(self, pose: torch.Tensor) -> torch.Tensor:
        """pose [N, 45] float32 on device → [N, 4, 512, 512] (a channels-last view of a reused buffer)."""
        n = pose.shape[0]
        buf = self._buf(n)
        face = self.face(pose, buf)
        image = buf["image"]
        image[:, :, FACE_ROWS, FACE_COLS] = face.permute(0, 3, 1, 2)
        return self.body(pose, image, buf).permute(0, 3, 1, 2)

"""Real-time student inference: the arithmetic of `network.py`, rearranged for speed. A frame is a body pass
(pose → the body morpher's 7 output channels: the expensive half) then a compose pass (face morpher → paste
→ warp → blend), as in the paper's Figure 2. `Levers` switches rearrangements off for bench_student.py:

1. Channels-last matrices: a 1×1 convolution is a GEMM of the pixels [N·H·W, C] by [C, C'] into a reused
   buffer, then an in-place `sin`; ω₀ is folded into the weights (`siren.folded`).
2. First layers without a GEMM (`first_layer.py`): a per-column plus a per-row vector (position) and one
   bias per frame (pose) instead of a GEMM over 47 channels.
3. Mix, then upsample (`low_res_mixing`): a 1×1 convolution commutes with bilinear upsampling, so the next
   level's first layer runs at the lower resolution (4× fewer multiply-adds); the clamped border rows and
   columns get a correction (`FirstLayer.fix_edges`).
4. The bias inside the GEMM (`torch.addmm`); a column of ones or a separate pass measured 6-11 % slower.
5. Only the pixels that can show (`mask.py`; `fast` only, ≥ 75 dB, about a fifth of a frame): the 256 and
   512 levels compute the rows of a visibility mask calibrated on a low-priority thread (whole frames until
   then). Not in `exact`: an unseen pose could show pixels outside it until the next full frame.
6. Crops at a cost proportional to their area (`windows.py`), with the whole frame's pixels.
7. Bands (`band_rows`): the face and the 512 level in bands of rows that stay in cache through the layers.
   The same bits here, but 15 % faster on a quiet Zen 4 and 20-45 % slower with other processes busy (Zen 1:
   every small GEMM ends in an OpenMP barrier): `fast` times it (`tuning.py`), `exact` never uses it.
8. The face only when its parameters change; otherwise the last face is pasted again.
9. The face's changing pixels only (`face_mask.py`; `fast`, ≥ 45 dB): the face morpher on a per-character mask
   of its crop, the neutral face elsewhere (85 % / 72 % of the crop kept: these faces are far from local).
   `fast` blends with one `lerp` and sums interpolated body outputs into one buffer (`compose_pass(mix=)`).

`fast` runs the wide hidden layers (≥ 128 inputs: the face, the body's first two levels) in float32 or in the
dtype the device multiplies natively (`arithmetic.choose`: bfloat16 with AVX512-BF16/AMX, float16 on CUDA) if
it keeps ≥ 40 dB of float32 on probe frames (`tuning.gate`), with or without bands: whichever `tuning.py`
measures faster. A reduced GEMM computes x·W alone; the bias is added in float32 before `sin` (a plain bf16
layer measured 33 dB). Narrow layers stay float32 (bound by memory).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS
from ..pose import NUM_PARAMETERS
from ..region import Region
from .arithmetic import Arithmetic, choose
from .buffers import BufferSets, tmp
from .calibration import MaskCalibration
from .face_mask import FaceMask
from .mask import VisibilityMask
from .first_layer import FirstLayer
from .network import ALPHA, BODY_OUTPUT_CHANNELS, COLOR_CHANGE, GRID_CHANGE, BodyMorpher, FaceMorpher
from .siren import folded, pixel_positions
from .tuning import GATE_DB, Candidate, Tuner, candidates, gate, time_body
from .windows import Window, level_windows

log = logging.getLogger("tha4bridge.student")
BF16_MIN_WIDTH = 128  # fast mode: GEMMs with at least this many inputs run in bfloat16


@dataclass(frozen=True)
class Levers:
    """Rearrangements that can be switched off to measure them (all on in normal use)."""

    low_res_mixing: bool = True  # lever 3
    face_cache: bool = True  # lever 8: paste the last face again when its parameters are unchanged
    band_rows: int | None = None  # lever 7: bands of this many pixels (0: none; None: `fast` times both, tuning.py)


class SirenRenderer:
    def __init__(self, face: FaceMorpher, body: BodyMorpher, image: torch.Tensor, mode: str = "exact",
                 device: torch.device | str = "cpu", levers: Levers = Levers(),
                 arithmetic: Arithmetic | None = None, mask: bool = False):
        """`arithmetic`: fast mode's reduced dtype, forced; None: float32 or the native one (`arithmetic.choose`),
        whichever times faster here (`tuning.py`). `mask`: compute only the pixels that can show (lever 5)."""
        if mode not in ("exact", "fast"):
            raise ValueError(f"mode must be 'exact' or 'fast', got {mode!r}")
        self.mode, self.device, self.levers = mode, torch.device(device), levers
        self.arithmetic = arithmetic or choose(self.device)
        dev = self.device
        cands = candidates(mode, self.arithmetic.dtype, dev, levers.band_rows, forced=arithmetic is not None)

        def hidden(conv, dtype):
            """One hidden sine layer: (GEMM weights [C_in, C_out], in `dtype` if wide, and the float32 bias)."""
            w, b = (t.detach().to(dev, torch.float32) for t in folded(conv))
            w = w.t().contiguous()
            return (w.to(dtype) if w.shape[0] >= BF16_MIN_WIDTH else w), b

        def last(conv):
            w, b = (t.detach().to(dev, torch.float32) for t in folded(conv, 1.0))
            return w.t().contiguous(), b

        # Face morpher: one level at 128; body: levels at body.sizes, each one's last sine layer feeding the next's
        # first. Hidden layers once per candidate dtype (`_use` picks the chosen one's).
        face_layers = [m.linear for m in face.siren.sine_layers]
        self.face_size = face.size
        self.face_first = FirstLayer(face_layers[0], 0, face.size, None, dev)
        self.face_last = last(face.siren.last_linear)
        self.sizes = list(body.sizes)
        body_convs = [[m.linear for m in seq] for seq in body.siren_layers]
        self._firsts = [FirstLayer(convs[0], 0 if i == 0 else convs[0].in_channels - (2 + NUM_PARAMETERS), size,
                                   self.sizes[i - 1] if i else None, dev)
                        for i, (size, convs) in enumerate(zip(self.sizes, body_convs))]
        self.body_last = last(body.last_linear)
        self._hidden = {d: ([hidden(c, d) for c in face_layers[1:]], [[hidden(c, d) for c in convs[1:]]
                                                                      for convs in body_convs])
                        for d in dict.fromkeys(c.dtype for c in cands)}
        self.tuner = Tuner(cands, self._use)
        self._use(self.tuner.chosen)
        self.gate_db: dict[torch.dtype, float] = {}  # each reduced dtype's worst PSNR against float32 (tuning.gate)

        self.base_grid = pixel_positions(self.sizes[-1], dev)  # [H, W, 2], the identity warp
        self.image = image.to(dev, torch.float32)
        self.mask = VisibilityMask(self.image, self.sizes[1:]) if mask else None
        # The face morpher on the pixels that can change only (face_mask.py): fast mode, with the visibility mask.
        self.face_mask = FaceMask(self.face_size) if mask and mode == "fast" else None
        self._modules = (face, body, image)  # for the mask's calibration renderer
        self.calibration = MaskCalibration(self, self._whole_frames)  # the masks' thread (calibration.py)
        self.calibrate_face_mask, self.calibrate_mask = self.calibration.face_mask, self.calibration.visibility_mask
        self.buffers = BufferSets(self.image)  # per (role, batch size, region): buffers.py
        self._last_face: tuple[torch.Tensor, torch.Tensor] | None = None  # (face parameters, face crop)
        self.can_crop = all(first.doubling for first, _ in self.levels[1:])
        if self.tuner.tuning:  # at load: only dtypes that keep fast's 40 dB, then the fastest (tuning.py)
            kept, self.gate_db = gate(self, cands)
            self.tuner = Tuner(kept, self._use)
            self._use(self.tuner.chosen)
        if self.tuner.tuning:
            self.tuner.choose(lambda c: time_body(self, c))
        self.buffers.clear()

    # -- the arrangement (tuning.py) -----------------------------------------------------------------
    def _use(self, cand: Candidate) -> None:
        """Render with `cand`'s weights and bands (`Tuner` calls this when it chooses)."""
        face_hidden, levels_hidden = self._hidden[cand.dtype]
        self.face_hidden, self.band_rows = face_hidden, cand.band_rows
        self.levels = list(zip(self._firsts, levels_hidden))

    def arithmetic_line(self) -> str:
        """What renders and why, with each candidate's measured ms and the dtypes the quality gate dropped."""
        if self.mode == "exact":
            return self.arithmetic.line("exact")
        dropped = [f"{str(d).removeprefix('torch.')} dropped: {db:.1f} dB from float32, under {GATE_DB:.0f}"
                   for d, db in self.gate_db.items() if db < GATE_DB]
        return self.tuner.line("; ".join([self.arithmetic.reason, *dropped]))

    def _tmp(self, buf: dict, key: str, shape, dtype=torch.float32, zero: bool = False) -> torch.Tensor:
        return tmp(buf, key, shape, dtype, zero, self.device)  # buffers.py

    # -- the layers ---------------------------------------------------------------------------------
    def _sine_stack(self, pre: torch.Tensor, layers, buf, tag: str) -> torch.Tensor:
        """pre: [M, C] float32 pre-activation of a level's first layer. Runs sin, then (GEMM, sin) per layer;
        returns the last layer's float32 activations."""
        x = pre.sin_()
        for j, (w, b) in enumerate(layers):
            out = self._tmp(buf, f"{tag}{j % 2}:{w.shape[1]}", (x.shape[0], w.shape[1]))  # ping-pong
            if w.dtype == torch.float32:
                torch.addmm(b, x, w, out=out)  # the bias inside the GEMM (lever 4)
            else:  # reduced-precision product of x·W alone; the bias is added in float32 before sin
                xb = self._tmp(buf, f"{tag}b:{x.shape[1]}", x.shape, w.dtype).copy_(x)
                prod = self._tmp(buf, f"{tag}p:{w.shape[1]}", out.shape, w.dtype)
                torch.mm(xb, w, out=prod)
                out.copy_(prod).add_(b)
            x = out.sin_()
        return x

    def _banded(self, pre: torch.Tensor, hidden, last, out: torch.Tensor, buf, tag: str,
                band: int | None = None) -> torch.Tensor:
        """out = last(sine stack(pre)), in bands of `band` rows (default: the chosen arrangement's; 0: all at
        once; lever 7): a band's activations stay in cache through all its layers."""
        band = (self.band_rows if band is None else band) or pre.shape[0]
        for r in range(0, pre.shape[0], band):
            torch.addmm(last[1], self._sine_stack(pre[r:r + band], hidden, buf, tag), last[0], out=out[r:r + band])
        return out

    def _upsample(self, x: torch.Tensor, n: int, low: Window, hw: tuple[int, int], buf, key: str) -> torch.Tensor:
        """[N·h·w, C] channels-last (a window) → [N, H, W, C] into a reused buffer (bilinear, align_corners=False)."""
        c = x.shape[1]
        out = self._tmp(buf, key, (n, *hw, c))
        torch.ops.aten.upsample_bilinear2d.out(x.view(n, low.h, low.w, c).permute(0, 3, 1, 2), list(hw), False,
                                               None, None, out=out.permute(0, 3, 1, 2))
        return out

    def _cut(self, up: torch.Tensor, low: Window, high: Window, buf, key: str) -> torch.Tensor:
        """The upsampled low window [N, 2h, 2w, C] → the high window's rows [N·H·W, C] (no copy when equal)."""
        dx, dy = high.x0 - 2 * low.x0, high.y0 - 2 * low.y0
        if (dx, dy, high.h, high.w) == (0, 0, up.shape[1], up.shape[2]):
            return up.view(-1, up.shape[3])
        out = self._tmp(buf, key, (up.shape[0], high.h, high.w, up.shape[3]))
        return out.copy_(up[:, dy:dy + high.h, dx:dx + high.w]).view(-1, up.shape[3])

    def _next_level_input(self, x, first: FirstLayer, pose, low_size: int, low: Window, high: Window,
                          buf, tag) -> torch.Tensor:
        """From level activations x [N·h·w, C + 1] (window `low`) to the next level's first pre-activation
        [N·H·W, C' + 1] (window `high`)."""
        n = pose.shape[0]
        hw = (2 * low.h, 2 * low.w) if first.doubling else (high.h, high.w)  # not doubling: full windows only
        if self.levers.low_res_mixing and first.doubling:  # lever 3
            mixed = self._tmp(buf, f"{tag}m", (x.shape[0], first.width))
            torch.mm(x, first.w_feat, out=mixed)
            first.add_position_and_pose(mixed.view(n, low.h, low.w, -1), pose, low.cut_terms(first.low_terms),
                                        first=False)
            up = self._upsample(mixed, n, low, hw, buf, f"{tag}u")
            first.fix_edges(up, low, low_size)
            return self._cut(up, low, high, buf, f"{tag}c")
        up = self._cut(self._upsample(x, n, low, hw, buf, f"{tag}u"), low, high, buf, f"{tag}c")
        pre = self._tmp(buf, f"{tag}m", (n, high.h, high.w, first.width))
        torch.mm(up, first.w_feat, out=pre.view(-1, first.width))
        first.add_position_and_pose(pre, pose, high.cut_terms(first.terms), first=False)
        return pre.view(-1, first.width)

    def face(self, pose: torch.Tensor, buf, masked: bool = False) -> torch.Tensor:
        """[N, 128, 128, 4] face crop (channels last). `masked`: the face mask's pixels only (face_mask.py; they
        equal the whole computation's rows), the neutral face elsewhere."""
        n, s, first = pose.shape[0], self.face_size, self.face_first
        pre = first.add_position_and_pose(self._tmp(buf, "f0", (n, s, s, first.width)), pose, first.terms, True)
        pre = pre.view(-1, first.width)
        if not masked:
            out = self._banded(pre, self.face_hidden, self.face_last, self._tmp(buf, "fout", (pre.shape[0], 4)),
                               buf, "fh")
            return out.view(n, s, s, 4)
        fm = self.face_mask
        idx = fm.index(n)
        pre = torch.index_select(pre, 0, idx, out=self._tmp(buf, "fg", (idx.numel(), pre.shape[1])))
        rows = self._banded(pre, self.face_hidden, self.face_last, self._tmp(buf, "foutm", (idx.numel(), 4)), buf, "fh")
        out = buf.get("fconst")  # the neutral face outside the mask: written once, then only the mask's rows
        if out is None or out.shape[0] != n or buf.get("fconst_of") is not fm.constant:
            out = buf["fconst"] = fm.constant.permute(1, 2, 0)[None].repeat(n, 1, 1, 1)
            buf["fconst_of"] = fm.constant
        out.view(-1, 4).index_copy_(0, idx, rows)  # the mask only grows: rows once inside stay rewritten
        return out

    def _face_computed(self, pose: torch.Tensor, buf) -> torch.Tensor:
        """[N, 4, 128, 128]: a new face; in fast mode (face mask calibrated) the mask's pixels only, but every
        FULL_EVERY-th one whole, which grows the mask (face_mask.py)."""
        fm = self.face_mask
        if fm is None:
            return self.face(pose, buf).permute(0, 3, 1, 2)
        if not fm.calibrated:
            self.calibration.start()  # whole faces meanwhile
            return self.face(pose, buf).permute(0, 3, 1, 2)
        if fm.wants_full_face():
            face = self.face(pose, buf).permute(0, 3, 1, 2)
            fm.grow(face)
            return face
        return self.face(pose, buf, masked=True).permute(0, 3, 1, 2)

    def _face_for(self, pose: torch.Tensor, buf) -> torch.Tensor:
        """[N, 4, 128, 128]: the face crop, computed, or the last one when its parameters are the same (a
        whole-frame and a crop stream of one student render the same pose; idle frames between blinks)."""
        if not self.levers.face_cache:
            return self._face_computed(pose, buf)
        face_in = pose[:, :self.face_first.w_pose.shape[0]]  # the face morpher reads only these parameters
        last = self._last_face
        if last is not None and last[0].shape == face_in.shape and torch.equal(last[0], face_in):
            return last[1]
        face = self._face_computed(pose, buf)
        self._last_face = (face_in.clone(), face.clone())
        return face

    def body(self, pose: torch.Tensor, buf, masked: bool = False, wins: list[Window] | None = None,
             cand: Candidate | None = None) -> torch.Tensor:
        """The body morpher's outputs [N, h, w, 7] (channels last: grid change, alpha, colour) over the last window
        in `wins` (None: the whole 512×512). They depend on the pose alone, not on the image: this is the
        expensive half of a frame (the "body pass"). `masked` (whole frames only): the levels in
        self.mask.sizes compute only the mask's pixels; elsewhere no warp, α = 1 and colour −1 (transparent)."""
        n = pose.shape[0]
        wins = wins or level_windows(self.sizes, None)
        timed = cand is None  # `cand`: this arrangement, untimed; else the tuner's (now and then another, timed)
        kind = (n, masked, wins[-1].h, wins[-1].w)
        cand = self.tuner.pick(kind) if timed else cand
        t = time.perf_counter()
        levels = list(zip(self._firsts, self._hidden[cand.dtype][1]))
        first, hidden = levels[0]
        w0 = wins[0]
        pre = first.add_position_and_pose(self._tmp(buf, "b0", (n, w0.h, w0.w, first.width)), pose,
                                          w0.cut_terms(first.terms), True)
        pre = pre.view(-1, first.width)
        idx = None
        for i, (size, (first, hidden)) in enumerate(zip(self.sizes, levels)):
            idx = self.mask.index(size, n) if masked and size in self.mask.sizes else None
            if idx is not None:  # only the rows that can show
                pre = torch.index_select(pre, 0, idx, out=self._tmp(buf, f"b{i}g", (idx.numel(), pre.shape[1])))
            if i + 1 == len(self.sizes):
                break  # the last level runs in bands below
            x = self._sine_stack(pre, hidden, buf, f"b{i}h")
            if idx is not None:  # back to the full grid; the next level's masked pixels read only these rows
                x = self._tmp(buf, f"b{i}x", (n * size * size, x.shape[1]), zero=True).index_copy_(0, idx, x)
            pre = self._next_level_input(x, levels[i + 1][0], pose, size, wins[i], wins[i + 1], buf, f"b{i}")
        win = wins[-1]
        y = self._tmp(buf, "bout", (n * win.h * win.w, BODY_OUTPUT_CHANNELS))
        rows = y if idx is None else self._tmp(buf, "boutm", (pre.shape[0], y.shape[1]))
        self._banded(pre, hidden, self.body_last, rows, buf, "bLh", cand.band_rows)
        if idx is not None:  # outside the mask: no warp, α = 1 and color -1, so the blend below is exactly transparent
            y[:, GRID_CHANGE], y[:, ALPHA], y[:, COLOR_CHANGE] = 0.0, 1.0, -1.0
            y.index_copy_(0, idx, rows)
        if timed and self.tuner.tuning:
            self.tuner.record(cand, kind, (time.perf_counter() - t) * 1000.0)
        return y.view(n, win.h, win.w, BODY_OUTPUT_CHANNELS)

    def compose(self, image: torch.Tensor, y: torch.Tensor, win: Window, buf) -> torch.Tensor:
        """The cheap half of a frame (the "compose pass"): the face-pasted image [N, 4, 512, 512] warped by the body
        outputs' grid change and blended with their colour by their alpha → [N, h, w, 4] channels last."""
        grid = torch.add(y[..., GRID_CHANGE], self.base_grid[win.y0:win.y1, win.x0:win.x1],
                         out=self._tmp(buf, "grid", (y.shape[0], win.h, win.w, 2)))  # reused: no 2 MB allocation
        warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        warped = warped.permute(0, 2, 3, 1)
        alpha, color = y[..., ALPHA], y[..., COLOR_CHANGE]
        # blended = (1 − α)·warped + α·color, written channels-last.
        out = self._tmp(buf, "blend", (y.shape[0], win.h, win.w, 4))
        if self.mode == "fast":  # one pass instead of three strided ones (within 1 ulp-ish; exact keeps its bits)
            return torch.lerp(warped, color, alpha, out=out)
        torch.sub(color, warped, out=out)
        return out.mul_(alpha).add_(warped)

    def _mixed(self, mix: list[tuple[torch.Tensor, float]], buf) -> torch.Tensor:
        """Σ weight·body outputs (e.g. A + s·(B − A) + c·D as [(A, 1 − s), (B, s), (D, c)]) into one reused
        buffer: one pass per term (a weight of 1 on the first term: a copy)."""
        (t0, w0), rest = mix[0], mix[1:]
        y = self._tmp(buf, "mix", tuple(t0.shape))
        if w0 == 1.0:
            y.copy_(t0)
        else:
            torch.mul(t0, w0, out=y)
        for t, w in rest:
            y.add_(t, alpha=w)
        return y

    def _whole_frames(self) -> "SirenRenderer":
        """A renderer of the same arrangement without masks (the visibility mask's calibration frames)."""
        chosen = self.tuner.chosen  # the same arrangement, not timed again
        return SirenRenderer(*self._modules, mode=self.mode, device=self.device,
                             levers=replace(self.levers, band_rows=chosen.band_rows),
                             arithmetic=Arithmetic(chosen.dtype, self.arithmetic.reason))

    def _wins(self, region: Region | None) -> list[Window]:
        return level_windows(self.sizes, region)

    def _masked(self) -> tuple[bool, bool]:
        """(compute this whole frame's body inside the visibility mask only, grow the mask from its frame)."""
        if self.mask is None:
            return False, False
        if not self.mask.calibrated:
            self.calibration.start()
            return False, True  # until the mask is calibrated: whole frames (they grow it too)
        full = self.mask.wants_full_frame()
        return not full, full

    @torch.inference_mode()
    def render(self, pose: torch.Tensor, region: Region | None = None) -> torch.Tensor:
        """pose [N, NUM_PARAMETERS] float32 on device → [N, 4, H, W] (a channels-last view of a reused buffer):
        the whole 512×512 frame, or the crop `region` (checked by the caller) at a cost near its area. One body
        pass and one compose pass."""
        n, size = pose.shape[0], self.sizes[-1]
        if region is not None and region.is_full(size, size):
            region = None
        if region is not None and not self.can_crop:  # levels that do not double: the crop of a full frame
            return region.cut(self.render(pose))
        buf = self.buffers.get(("frame", n, region))
        image = buf["image"]
        image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = self._face_for(pose, buf)  # a 256 KB copy
        wins = self._wins(region)
        masked, grow = self._masked() if region is None else (False, False)  # the mask is for whole frames
        out = self.compose(image, self.body(pose, buf, masked, wins), wins[-1], buf).permute(0, 3, 1, 2)
        if grow:
            self.mask.grow(out)
        return out

    # -- two rates (the daemon's fast mode: renderer.py's body pass on a thread of its own) ----------------
    @torch.inference_mode()
    def body_pass(self, pose: torch.Tensor, region: Region | None = None) -> torch.Tensor:
        """The body outputs [N, h, w, 7] of `pose` (a copy: it outlives the next pass) for the whole frame or the
        crop `region`; safe on a thread beside `compose_pass` (buffers of its own)."""
        n, size = pose.shape[0], self.sizes[-1]
        if region is not None and region.is_full(size, size):
            region = None
        buf = self.buffers.get(("body", n, region))
        wins = self._wins(region)
        masked, grow = self._masked() if region is None else (False, False)
        y = self.body(pose, buf, masked, wins)
        if grow:  # the mask grows from whole frames: compose this one with its own face (the cache is the
            image = buf["image"]  # render thread's)
            image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = self.face(pose, buf).permute(0, 3, 1, 2)
            self.mask.grow(self.compose(image, y, wins[-1], buf).permute(0, 3, 1, 2))
        return y.clone()

    @torch.inference_mode()
    def compose_pass(self, pose: torch.Tensor, y: torch.Tensor | None, region: Region | None = None,
                     mix: list[tuple[torch.Tensor, float]] | None = None) -> torch.Tensor:
        """A frame [N, 4, h, w] from `pose`'s face and body outputs `y` (from `body_pass`), or, given `mix`
        (a list of (body outputs, weight); `y` is then ignored), their weighted sum made in one reused buffer
        (the two-rate daemon's interpolation): the face morpher, the paste, the warp and the blend."""
        n, size = pose.shape[0], self.sizes[-1]
        if region is not None and region.is_full(size, size):
            region = None
        buf = self.buffers.get(("compose", n, region))
        if mix:
            y = self._mixed(mix, buf)
        image = buf["image"]
        image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = self._face_for(pose, buf)
        return self.compose(image, y, self._wins(region)[-1], buf).permute(0, 3, 1, 2)

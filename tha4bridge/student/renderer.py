"""Real-time student inference: the arithmetic of `network.py`, rearranged for speed.

Same result, less work. Each rearrangement (a "lever") can be switched off through `Levers`, so that
`benchmarks/bench_student.py` measures what each one buys.

1. Channels-last matrices. A 1×1 convolution over an image is a matrix product of the pixels [N·H·W, C]
   with the weights [C, C']; keeping every activation as one contiguous [pixels, channels] matrix lets
   each layer be one GEMM into a preallocated buffer followed by an in-place `sin`, with no layout copies.
   Buffers are allocated once per batch size; the character image with the face pasted in lives in one
   buffer whose face region alone is rewritten each frame. ω₀ is folded into the weights (`siren.folded`).
2. First layers without a GEMM. A level's first layer reads [features?, x, y, pose]. Its position part
   is a per-column plus a per-row vector (x varies along columns, y along rows) and its pose part is
   one bias vector per frame (`siren.position_terms`, `siren.pose_term`), so it costs two broadcast adds
   instead of a GEMM over 47 channels.
3. Mix, then upsample (`Levers.low_res_mixing`). A 1×1 convolution commutes with bilinear upsampling
   (both are linear and the interpolation weights sum to 1), so the next level's first layer runs on
   the previous level's features at the *lower* resolution and only its result is upsampled: 4× fewer
   multiply-adds. The position and pose terms are linear in the pixel coordinates, so they are added
   at the low resolution too; bilinear upsampling reproduces a linear function exactly except on the
   border rows and columns (where the source index is clamped), which get a small correction. At the
   high resolution there is then one write (the upsample) before `sin`, instead of three passes.
4. Biases inside the GEMMs (`Levers.bias`). "addmm" (the default): each product starts from the bias
   (`torch.addmm`), no separate pass. "ones": every activation matrix carries a column of ones whose
   weight row holds the bias, and each layer has one extra output column with pre-activation π/2, so that
   `sin` itself rewrites the next layer's column of ones; this makes every GEMM one row and column wider
   (odd sizes), measured 6-11 % slower than addmm on AVX2 Zen 1 (2 cores, MKL; bench_student's "ones"
   row). "add": a product, then a bias pass (the plain arrangement, for measuring).
5. Only the pixels that can show (`mask.py`, `mask=True`; on in `fast`): the 256 and 512 levels compute
   the rows of a per-student visibility mask only (gathered with index_select, scattered back with
   index_copy_); the rest of the frame is exactly transparent. The mask is calibrated on a background
   thread (its own renderer and buffers) started by the first render; until it is ready every frame is
   computed whole, so the first frame is never slower. Measured ≥ 75 dB against the whole frame on
   random and extreme poses of both fixture students; it saves about a fifth of a frame there (random
   poses spread the union to ~2/3 of the frame). Off in `exact`: a pose unlike anything the mask has
   seen could show pixels outside it until the next full frame, and exact promises the official pixels.
6. Crops at a cost proportional to their area (`render(pose, region)`): every body level computes only
   the window its successor reads (`level_windows`: half the next window plus one low-res pixel each side,
   what bilinear upsampling ×2 touches), upsamples that window and cuts the next window out of it. The
   crop's pixels equal the full frame's; only the face morpher (its 128×128 crop feeds the warp, which may
   read any of it) always runs whole.
7. The face morpher and the body's last level in bands of rows (`Levers.band_rows`): the last level's
   sine layers are narrow (90 channels over 262,144 pixels), so each pass over a whole-frame activation
   matrix (94 MB) is bound by memory; in bands of a few thousand pixels the activations stay in cache
   from one layer to the next, through the last linear layer. Off by default: on AVX2 Zen 1 (2 cores,
   1 MiB L2) a whole frame took 718 ms in 2048-pixel bands against 731 ms (2 %), but with one or two
   other processes busy on the cores 1798 and 2223 ms against 1491 and 1541 (every small GEMM ends in an
   OpenMP barrier that waits for a preempted thread; `benchmarks/bench_student.py --busy 1`, its
   "lever 7" row). A streamer's machine always has another process busy.

8. The face only when its parameters change: the face morpher (128×128, ~85 ms of a frame on a 2-core Zen 1)
   reads only the first parameters of the pose (eyebrows, eyes, iris size, mouth); when they equal the last
   frame's, the last face is pasted again. A whole-frame and a crop stream of one student render each pose
   twice, and idle frames between blinks change only breathing and rotations.
`fast` mode runs the wide hidden layers (≥ 128 inputs, where the GEMM dominates: the face morpher and
the body's first two levels) in the reduced precision that `arithmetic.choose` finds native on the device
(bfloat16 with AMX / AVX-512-BF16, float16 on CUDA tensor cores); where there is none, it keeps float32.
A plain bfloat16 cast measured 33 dB because ω₀ = 30 amplifies rounding, and letting the bf16 product
carry the bias measured 35 dB: here the product carries x·W only and the bias is added in float32 before
`sin`, which keeps ≥ 40 dB against `exact`. Narrow layers (the 512 level) are bound by memory passes, not
arithmetic, so they stay float32: the dtype conversions would cost what the GEMM saves.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS
from ..pose import NUM_PARAMETERS
from ..region import Region
from .arithmetic import Arithmetic, choose
from .mask import VisibilityMask, calibration_poses
from .first_layer import HALF_PI, FirstLayer, with_bias_row
from .network import ALPHA, BODY_OUTPUT_CHANNELS, COLOR_CHANGE, GRID_CHANGE, BodyMorpher, FaceMorpher
from .siren import folded, pixel_positions
from .windows import Window, level_windows

log = logging.getLogger("tha4bridge.student")
BF16_MIN_WIDTH = 128  # fast mode: GEMMs with at least this many inputs run in bfloat16


@dataclass(frozen=True)
class Levers:
    """Rearrangements that can be switched off to measure them (all on in normal use)."""

    low_res_mixing: bool = True
    face_cache: bool = True  # lever 8: paste the last face again when its parameters are unchanged
    band_rows: int = 0  # lever 7: the face and the last level in bands of this many pixels (0: all at once)
    bias: str = "addmm"  # lever 4: "addmm", "ones" (a column of ones carries it) or "add" (a separate pass)

    def __post_init__(self):
        if self.bias not in ("addmm", "ones", "add"):
            raise ValueError(f"Levers.bias must be addmm, ones or add, got {self.bias!r}")


class SirenRenderer:
    def __init__(self, face: FaceMorpher, body: BodyMorpher, image: torch.Tensor, mode: str = "exact",
                 device: torch.device | str = "cpu", levers: Levers = Levers(),
                 arithmetic: Arithmetic | None = None, mask: bool = False):
        """`arithmetic`: fast mode's GEMM precision; None chooses it from the device (`arithmetic.choose`).
        `mask`: compute only the pixels that can show (`mask.py`) at the levels above the first (lever 5)."""
        if mode not in ("exact", "fast"):
            raise ValueError(f"mode must be 'exact' or 'fast', got {mode!r}")
        self.mode, self.device, self.levers = mode, torch.device(device), levers
        self.arithmetic = arithmetic or choose(self.device)
        reduced = self.arithmetic.dtype
        dev = self.device

        ones = levers.bias == "ones"

        def hidden(conv):
            """One hidden sine layer: (GEMM weights, float32 bias, or None when a ones column carries it)."""
            w, b = (t.detach().to(dev, torch.float32) for t in folded(conv))
            w = w.t()
            reduce = mode == "fast" and reduced != torch.float32 and w.shape[0] >= BF16_MIN_WIDTH
            if ones and not reduce:
                return with_bias_row(w, b, True), None
            if ones:  # the bias (and the π/2 of the ones column) is added after the reduced GEMM, in float32
                return F.pad(with_bias_row(w, None, False), (0, 1)).to(reduced), F.pad(b, (0, 1), value=HALF_PI)
            return w.contiguous().to(reduced if reduce else torch.float32), b

        def last(conv):
            w, b = (t.detach().to(dev, torch.float32) for t in folded(conv, 1.0))
            return (with_bias_row(w.t(), b, False), None) if ones else (w.t().contiguous(), b)

        # Face morpher: one level at 128.
        layers = [m.linear for m in face.siren.sine_layers]
        self.face_size = face.size
        self.face_first = FirstLayer(layers[0], 0, face.size, None, dev, ones)
        self.face_hidden = [hidden(c) for c in layers[1:]]
        self.face_last = last(face.siren.last_linear)

        # Body morpher: levels at body.sizes; a level's last sine layer feeds the next level's first.
        self.sizes = list(body.sizes)
        self.levels = []
        for i, (size, seq) in enumerate(zip(self.sizes, body.siren_layers)):
            convs = [m.linear for m in seq]
            n_feat = 0 if i == 0 else convs[0].in_channels - (2 + NUM_PARAMETERS)
            first = FirstLayer(convs[0], n_feat, size, self.sizes[i - 1] if i else None, dev, ones)
            self.levels.append((first, [hidden(c) for c in convs[1:]]))
        self.body_last = last(body.last_linear)

        self.base_grid = pixel_positions(self.sizes[-1], dev)  # [H, W, 2], the identity warp
        self.image = image.to(dev, torch.float32)
        self.mask = VisibilityMask(self.image, self.sizes[1:]) if mask else None
        self._modules = (face, body, image)  # for the mask's calibration renderer
        self._calibration: threading.Thread | None = None
        self._calibrating = threading.Lock()
        self._stop = threading.Event()  # set at interpreter exit: a calibration in progress gives up
        self._buffers: dict[tuple, dict[str, torch.Tensor]] = {}
        self._buffers_lock = threading.Lock()  # a body pass (its own thread) and compose passes share the dict
        self._last_face: tuple[torch.Tensor, torch.Tensor] | None = None  # (face parameters, face crop)
        self.can_crop = all(first.doubling for first, _ in self.levels[1:])

    # -- buffers ------------------------------------------------------------------------------------
    def _buf(self, key: tuple) -> dict[str, torch.Tensor]:
        """The buffers of one (role, batch size, region): e.g. a whole-frame stream and a crop of the same
        student, or a body pass on its thread beside the compose passes of the render thread."""
        with self._buffers_lock:
            b = self._buffers.pop(key, None)
            if b is None:
                b = {"image": self.image[None].repeat(key[1], 1, 1, 1)}  # face region rewritten per frame
            # Keep the four most recent (e.g. single frames, a crop of the same student, a batch, a body pass):
            # reallocating hundreds of MB per call costs more than the render.
            self._buffers = {k: v for k, v in list(self._buffers.items())[-3:]}
            self._buffers[key] = b
            return b

    def _tmp(self, buf: dict, key: str, shape, dtype=torch.float32, zero: bool = False) -> torch.Tensor:
        """A reused buffer; `zero`: zeroed when (re)allocated (rows some frames leave unwritten). A matrix
        with fewer rows than the buffer holds is its first rows (a band's last, short piece)."""
        t = buf.get(key)
        if (t is not None and len(shape) == 2 and t.dim() == 2 and t.shape[1] == shape[1] and t.dtype == dtype
                and shape[0] <= t.shape[0] and not zero):
            return t[:shape[0]]
        if t is None or t.shape != torch.Size(shape) or t.dtype != dtype:
            t = (torch.zeros if zero else torch.empty)(shape, dtype=dtype, device=self.device)
            buf[key] = t
        return t

    # -- the layers ---------------------------------------------------------------------------------
    def _linear(self, x: torch.Tensor, layer, out: torch.Tensor) -> torch.Tensor:
        """out = x·W + b in float32 (lever 4 decides how the bias gets in)."""
        w, b = layer
        if b is None:  # a ones column carries it
            return torch.mm(x, w, out=out)
        if self.levers.bias == "add":
            return torch.mm(x, w, out=out).add_(b)
        return torch.addmm(b, x, w, out=out)

    def _sine_stack(self, pre: torch.Tensor, layers, buf, tag: str) -> torch.Tensor:
        """pre: [M, C (+ 1)] float32 pre-activation of a level's first layer. Runs sin, then
        (GEMM, sin) per layer; returns the last layer's float32 activations (with their ones column)."""
        x = pre.sin_()
        for j, (w, b) in enumerate(layers):
            out = self._tmp(buf, f"{tag}{j % 2}:{w.shape[1]}", (x.shape[0], w.shape[1]))  # ping-pong
            if w.dtype == torch.float32:
                self._linear(x, (w, b), out)
            else:  # reduced-precision product of x·W alone; the bias is added in float32 before sin
                xb = self._tmp(buf, f"{tag}b:{x.shape[1]}", x.shape, w.dtype).copy_(x)
                prod = self._tmp(buf, f"{tag}p:{w.shape[1]}", out.shape, w.dtype)
                torch.mm(xb, w, out=prod)
                out.copy_(prod).add_(b)
            x = out.sin_()
        return x

    def _banded(self, pre: torch.Tensor, hidden, last, out: torch.Tensor, buf, tag: str) -> torch.Tensor:
        """out = last(sine stack(pre)), in bands of rows (lever 7): a band's activations stay in cache
        through all its layers instead of each layer streaming a whole-frame matrix through memory."""
        band = self.levers.band_rows or pre.shape[0]
        for r in range(0, pre.shape[0], band):
            self._linear(self._sine_stack(pre[r:r + band], hidden, buf, tag), last, out[r:r + band])
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

    def face(self, pose: torch.Tensor, buf) -> torch.Tensor:
        """[N, 128, 128, 4] face crop (channels last)."""
        n, s, first = pose.shape[0], self.face_size, self.face_first
        pre = first.add_position_and_pose(self._tmp(buf, "f0", (n, s, s, first.width)), pose, first.terms, True)
        pre = pre.view(-1, first.width)
        out = self._banded(pre, self.face_hidden, self.face_last, self._tmp(buf, "fout", (pre.shape[0], 4)), buf, "fh")
        return out.view(n, s, s, 4)

    def _face_for(self, pose: torch.Tensor, buf) -> torch.Tensor:
        """[N, 4, 128, 128]: the face crop, computed, or the last one when its parameters are the same (a
        whole-frame and a crop stream of one student render the same pose; idle frames between blinks)."""
        if not self.levers.face_cache:
            return self.face(pose, buf).permute(0, 3, 1, 2)
        face_in = pose[:, :self.face_first.w_pose.shape[0]]  # the face morpher reads only these parameters
        last = self._last_face
        if last is not None and last[0].shape == face_in.shape and torch.equal(last[0], face_in):
            return last[1]
        face = self.face(pose, buf).permute(0, 3, 1, 2)
        self._last_face = (face_in.clone(), face.clone())
        return face

    def body(self, pose: torch.Tensor, buf, masked: bool = False, wins: list[Window] | None = None) -> torch.Tensor:
        """The body morpher's outputs [N, h, w, 7] (channels last: grid change, alpha, colour) over the last window
        in `wins` (None: the whole 512×512). They depend on the pose alone, not on the image: this is the
        expensive half of a frame (the "body pass"). `masked` (whole frames only): the levels in
        self.mask.sizes compute only the mask's pixels; elsewhere no warp, α = 1 and colour −1 (transparent)."""
        n = pose.shape[0]
        wins = wins or level_windows(self.sizes, None)
        first, hidden = self.levels[0]
        w0 = wins[0]
        pre = first.add_position_and_pose(self._tmp(buf, "b0", (n, w0.h, w0.w, first.width)), pose,
                                          w0.cut_terms(first.terms), True)
        pre = pre.view(-1, first.width)
        idx = None
        for i, (size, (first, hidden)) in enumerate(zip(self.sizes, self.levels)):
            idx = self.mask.index(size, n) if masked and size in self.mask.sizes else None
            if idx is not None:  # only the rows that can show
                pre = torch.index_select(pre, 0, idx, out=self._tmp(buf, f"b{i}g", (idx.numel(), pre.shape[1])))
            if i + 1 == len(self.sizes):
                break  # the last level runs in bands below
            x = self._sine_stack(pre, hidden, buf, f"b{i}h")
            if idx is not None:  # back to the full grid; the next level's masked pixels read only these rows
                x = self._tmp(buf, f"b{i}x", (n * size * size, x.shape[1]), zero=True).index_copy_(0, idx, x)
            pre = self._next_level_input(x, self.levels[i + 1][0], pose, size, wins[i], wins[i + 1], buf, f"b{i}")
        win = wins[-1]
        y = self._tmp(buf, "bout", (n * win.h * win.w, BODY_OUTPUT_CHANNELS))
        rows = y if idx is None else self._tmp(buf, "boutm", (pre.shape[0], y.shape[1]))
        self._banded(pre, hidden, self.body_last, rows, buf, "bLh")
        if idx is not None:  # outside the mask: no warp, α = 1 and color -1, so the blend below is exactly transparent
            y[:, GRID_CHANGE], y[:, ALPHA], y[:, COLOR_CHANGE] = 0.0, 1.0, -1.0
            y.index_copy_(0, idx, rows)
        return y.view(n, win.h, win.w, BODY_OUTPUT_CHANNELS)

    def compose(self, image: torch.Tensor, y: torch.Tensor, win: Window, buf) -> torch.Tensor:
        """The cheap half of a frame (the "compose pass"): the face-pasted image [N, 4, 512, 512] warped by the body
        outputs' grid change and blended with their colour by their alpha → [N, h, w, 4] channels last."""
        grid = torch.add(y[..., GRID_CHANGE], self.base_grid[win.y0:win.y1, win.x0:win.x1])
        warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        warped = warped.permute(0, 2, 3, 1)
        alpha, color = y[..., ALPHA], y[..., COLOR_CHANGE]
        # blended = (1 − α)·warped + α·color, written channels-last.
        out = self._tmp(buf, "blend", (y.shape[0], win.h, win.w, 4))
        torch.sub(color, warped, out=out)
        return out.mul_(alpha).add_(warped)

    def calibrate_mask(self) -> None:
        """Grow the mask by the full frames of `calibration_poses()`, rendered by a renderer of its own (its
        own buffers: this can run on a thread beside `render`); masked frames start once it is done."""
        with self._calibrating:
            if self.mask is None or self.mask.calibrated:
                return
            helper = SirenRenderer(*self._modules, mode=self.mode, device=self.device, levers=self.levers,
                                   arithmetic=self.arithmetic)
            for p in torch.from_numpy(calibration_poses()).to(self.device):
                if self._stop.is_set():
                    return
                self.mask.grow(helper.render(p[None]))
            self.mask.calibrated = True

    def _calibrate_in_background(self) -> None:
        def run() -> None:
            try:  # lowest priority (Linux: per thread, inherited by its OpenMP workers): frames come first
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            except (AttributeError, OSError):
                pass
            try:
                self.calibrate_mask()
            except Exception:  # the mask stays uncalibrated: every frame is computed whole, as without it
                log.exception("visibility mask calibration failed; rendering whole frames")

        if self._calibration is None:
            self._calibration = threading.Thread(target=run, name="mask-calibration", daemon=True)
            self._calibration.start()
            _CALIBRATING.add(self)

    def _wins(self, region: Region | None) -> list[Window]:
        return level_windows(self.sizes, region)

    def _masked(self) -> tuple[bool, bool]:
        """(compute this whole frame's body inside the visibility mask only, grow the mask from its frame)."""
        if self.mask is None:
            return False, False
        if not self.mask.calibrated:
            self._calibrate_in_background()
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
        buf = self._buf(("frame", n, region))
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
        buf = self._buf(("body", n, region))
        wins = self._wins(region)
        masked, grow = self._masked() if region is None else (False, False)
        y = self.body(pose, buf, masked, wins)
        if grow:  # the mask grows from whole frames: compose this one with its own face (the cache is the
            image = buf["image"]  # render thread's)
            image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = self.face(pose, buf).permute(0, 3, 1, 2)
            self.mask.grow(self.compose(image, y, wins[-1], buf).permute(0, 3, 1, 2))
        return y.clone()

    @torch.inference_mode()
    def compose_pass(self, pose: torch.Tensor, y: torch.Tensor, region: Region | None = None) -> torch.Tensor:
        """A frame [N, 4, h, w] from `pose`'s face and body outputs `y` (from `body_pass`, or an estimate made
        from several of them): the face morpher, the paste, the warp and the blend."""
        n, size = pose.shape[0], self.sizes[-1]
        if region is not None and region.is_full(size, size):
            region = None
        buf = self._buf(("compose", n, region))
        image = buf["image"]
        image[:, :, STUDENT_FACE_ROWS, STUDENT_FACE_COLS] = self._face_for(pose, buf)
        return self.compose(image, y, self._wins(region)[-1], buf).permute(0, 3, 1, 2)


# Renderers whose mask calibration thread was started. At exit each is asked to stop and joined (at most one
# calibration frame): a daemon thread killed inside a torch kernel at interpreter shutdown aborts the process.
_CALIBRATING: "weakref.WeakSet[SirenRenderer]" = weakref.WeakSet()


@atexit.register
def _stop_calibrations() -> None:
    for r in list(_CALIBRATING):
        r._stop.set()
    for r in list(_CALIBRATING):
        r._calibration.join()

"""Image conventions: PNG ↔ the official THA4 tensor, and frames → what engines upload.

Official convention (protocols/tha4_model.md, "Image conventions"): float32 CHW, RGBA, RGB converted
sRGB→linear, premultiplied by alpha, then every channel mapped x → 2x − 1. Engines want 8-bit sRGB RGBA, HWC,
with straight or premultiplied alpha; `to_rgba8` does that in one pass with a lookup table (a `pow` per pixel
costs more than the render's last layer).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .region import FRAME

# The student's face crop in the 512 frame, 128×128 (protocols/character_model.md, "The face crop"): the one
# definition. The teacher's larger face crop is another region (TEACHER_FACE_ROWS/COLS, distiller/teacher).
STUDENT_FACE_ROWS = slice(80, 208)
STUDENT_FACE_COLS = slice(192, 320)


def srgb_to_linear(c: np.ndarray | torch.Tensor):
    lib = torch if isinstance(c, torch.Tensor) else np
    c = lib.clip(c, 0.0, 1.0)
    return lib.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray | torch.Tensor):
    lib = torch if isinstance(c, torch.Tensor) else np
    c = lib.clip(c, 0.0, 1.0)
    return lib.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1.0 / 2.4) - 0.055)


class ImageError(ValueError):
    """A PNG that cannot be used; the message names the file and the problem."""


def load_character_png(path: str | Path, size: int = FRAME) -> torch.Tensor:
    """A character PNG → float32 [4, size, size] in the official convention. Must be `size`² RGBA."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode, dims = im.mode, im.size
            arr = np.asarray(im, dtype=np.uint8) if mode == "RGBA" else None
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except Exception as e:  # PIL raises several types for non-images
        raise ImageError(f"{path}: not a readable PNG ({e})") from None
    if dims != (size, size) or mode != "RGBA":
        raise ImageError(f"{path}: must be a {size}x{size} RGBA PNG, got {dims[0]}x{dims[1]} {mode}")
    return rgba8_to_tensor(arr)


def rgba8_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """HWC uint8 sRGB straight-alpha RGBA → float32 CHW official convention."""
    x = arr.astype(np.float32) / 255.0
    rgb = srgb_to_linear(x[..., :3]) * x[..., 3:4]
    x = np.concatenate([rgb, x[..., 3:4]], axis=-1) * 2.0 - 1.0
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def load_face_mask(path: str | Path, size: int = FRAME) -> torch.Tensor:
    """A face mask PNG (RGB, black/white) → float32 [4, 128, 128] in {0, 1}: channel R, face crop, ×4."""
    path = Path(path)
    with Image.open(path) as im:
        if im.size != (size, size):
            raise ImageError(f"{path}: a face mask must be {size}x{size}, got {im.size[0]}x{im.size[1]}")
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    r = torch.from_numpy(np.ascontiguousarray(arr[STUDENT_FACE_ROWS, STUDENT_FACE_COLS, 0]))
    return r[None].expand(4, -1, -1).contiguous()


# linear [0, 1] → sRGB uint8, sampled finely enough that every 8-bit output is exact for inputs on the
# grid and off by at most one level between (the curve is steepest near 0, where 1/65535 steps resolve it).
_LUT_SIZE = 65536
_LUT_CACHE: dict[torch.device, torch.Tensor] = {}


def _srgb_lut(device: torch.device) -> torch.Tensor:
    lut = _LUT_CACHE.get(device)
    if lut is None:
        x = torch.linspace(0.0, 1.0, _LUT_SIZE, dtype=torch.float64)
        lut = (linear_to_srgb(x) * 255.0).round().to(torch.uint8).to(device)
        _LUT_CACHE[device] = lut
    return lut


@torch.inference_mode()
def to_rgba8(frames: torch.Tensor, premultiplied: bool = False) -> torch.Tensor:
    """Official-convention frames [N, 4, H, W] → uint8 [N, H, W, 4] sRGB RGBA (on the frames' device).

    straight alpha: RGB = sRGB(linear_premult / alpha) (0 where alpha < 1e-5, as the official sheet writer).
    premultiplied: RGB = sRGB(straight) × alpha, i.e. premultiplied in the 8-bit sRGB values an engine
    blends with `Blend One OneMinusSrcAlpha`.
    """
    x = frames.permute(0, 2, 3, 1)  # NHWC view; free when the renderer produced channels-last memory
    a = ((x[..., 3:4] + 1.0) * 0.5).clamp_(0.0, 1.0)
    rgb = (x[..., :3] + 1.0) * 0.5
    visible = a > 1e-5
    rgb = torch.where(visible, rgb / a.clamp(min=1e-5), torch.zeros((), device=x.device))
    idx = (rgb.clamp_(0.0, 1.0) * (_LUT_SIZE - 1) + 0.5).to(torch.int32)
    srgb = _srgb_lut(x.device)[idx]
    a8 = (a * 255.0 + 0.5).to(torch.uint8)
    if premultiplied:
        srgb = ((srgb.to(torch.int32) * a8.to(torch.int32) + 127) // 255).to(torch.uint8)
    return torch.cat([srgb, a8], dim=-1)


def save_png(rgba8: np.ndarray | torch.Tensor, path: str | Path) -> None:
    """Write one uint8 [H, W, 4] image."""
    if isinstance(rgba8, torch.Tensor):
        rgba8 = rgba8.cpu().numpy()
    Image.fromarray(np.ascontiguousarray(rgba8), "RGBA").save(path)


def psnr(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """PSNR in dB of two official-convention images on the [0, 1] scale ((x+1)/2), over all channels.

    This is the fixture README's metric. Identical inputs give +inf.
    """
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).double()
    b = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b).double()
    mse = (((a.cpu() - b.cpu()) * 0.5) ** 2).mean().item()
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)

"""The built-in demo character: a small procedural poser drawn in code, no downloads.

It exists so that `tha4bridge serve` shows something on a fresh clone, tests run without model files, and the
distiller has a teacher with no weights. Every parameter group visibly moves something: eyebrows (height and
slant), eyes (lid closure, shape, lower lid), iris (size, gaze), mouth (vowel shapes, corners, smirk),
head/neck (turn, nod, roll), body (turn, lean) and breathing (chest rise).

Shapes are soft signed-distance masks composited back to front on a pixel grid, all batched over poses.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .defaults import DEMO
from .region import FRAME
from .imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS, srgb_to_linear
from .pose import INDEX, NUM_PARAMETERS
from .poser import Poser, pick_device

SIZE = FRAME
DRAW = 256  # shapes are drawn at half resolution, then upsampled: 4× cheaper, still smooth


def _soft(sdf: torch.Tensor, edge: float = SIZE / DRAW) -> torch.Tensor:
    """Coverage of a shape from its signed distance (negative inside), antialiased over `edge` pixels."""
    return (0.5 - sdf / edge).clamp(0.0, 1.0)


def _ellipse(x, y, cx, cy, rx, ry):
    # An approximate distance (exact for circles), good enough for drawing.
    return (torch.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2) - 1.0) * torch.minimum(
        torch.as_tensor(rx), torch.as_tensor(ry))


def _segment(x, y, ax, ay, bx, by, r):
    """Distance to a thick line segment (a capsule) from (ax, ay) to (bx, by)."""
    px, py, dx, dy = x - ax, y - ay, bx - ax, by - ay
    t = ((px * dx + py * dy) / (dx * dx + dy * dy + 1e-6)).clamp(0.0, 1.0)
    return torch.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2) - r


def _rotate(x, y, cx, cy, angle):
    c, s = torch.cos(angle), torch.sin(angle)
    return cx + (x - cx) * c + (y - cy) * s, cy - (x - cx) * s + (y - cy) * c


SKIN, HAIR, SHIRT = (1.0, 0.87, 0.78), (0.33, 0.22, 0.45), (0.25, 0.5, 0.85)
WHITE, IRIS, LINE, MOUTH = (1.0, 1.0, 1.0), (0.2, 0.55, 0.35), (0.2, 0.12, 0.15), (0.65, 0.2, 0.25)


class _Canvas:
    """Soft shapes composited back to front over a batch of poses: [N, 3] straight colour and [N, 1] coverage."""

    def __init__(self, n: int, device: torch.device):
        self.device = device
        self.rgb = torch.zeros(n, 3, DRAW, DRAW, device=device)
        self.alpha = torch.zeros(n, 1, DRAW, DRAW, device=device)

    def paint(self, cover: torch.Tensor, color: tuple[float, float, float]) -> None:
        cover = cover.unsqueeze(1)
        col = torch.tensor(color, device=self.device).view(1, 3, 1, 1)
        self.rgb = self.rgb * (1 - cover) + col * cover
        self.alpha = self.alpha * (1 - cover) + cover


def _draw_body(canvas: _Canvas, p: dict, x, y):
    """Body: lean (body_z) about the hips, turn (body_y) shifts it; breathing lifts the chest. → body coordinates."""
    bx, by = _rotate(x, y, 256.0, 560.0, p["body_z"] * 0.25)
    bx = bx - p["body_y"] * 30.0
    breath = p["breathing"] * 8.0
    canvas.paint(_soft(_ellipse(bx, by, 256.0 + p["body_y"] * 10.0, 470.0 - breath * 0.5, 120.0, 150.0 + breath)), SHIRT)
    canvas.paint(_soft(_segment(bx, by, 256.0, 240.0, 256.0, 330.0 - breath, 26.0)), SKIN)  # neck
    return bx, by


def _draw_head(canvas: _Canvas, p: dict, bx, by):
    """Head: roll (neck_z) about the neck, turn (head_y) and nod (head_x) shift the face features.
    → face-feature coordinates."""
    hx, hy = _rotate(bx, by, 256.0, 250.0, p["neck_z"] * 0.35)
    fx = hx - p["head_y"] * 22.0
    fy = hy + p["head_x"] * 16.0
    canvas.paint(_soft(_ellipse(hx, hy, 256.0, 160.0, 92.0, 100.0)), HAIR)
    canvas.paint(_soft(_ellipse(hx, hy, 256.0 + p["head_y"] * 8.0, 172.0, 74.0, 82.0)), SKIN)
    return fx, fy


def _draw_eye_and_brow(canvas: _Canvas, p: dict, fx, fy, side: str, cx: float) -> None:
    s = 1.0 if side == "left" else -1.0
    open_ = (1.0 - p[f"eye_wink_{side}"]) * (1.0 - 0.8 * p[f"eye_happy_wink_{side}"])
    open_ = open_ * (1.0 + 0.35 * p[f"eye_surprised_{side}"]) * (1.0 - 0.35 * p[f"eye_relaxed_{side}"])
    ry = (15.0 * open_ * (1.0 - 0.45 * p[f"eye_unimpressed_{side}"])).clamp(min=0.01)
    ey = 162.0 - 4.0 * p[f"eye_raised_lower_eyelid_{side}"]
    eye = _ellipse(fx, fy, cx, ey, 13.0, ry)
    lower_lid = fy - (ey + ry * (1.0 - 0.6 * p[f"eye_raised_lower_eyelid_{side}"]))
    eye = torch.maximum(eye, lower_lid)
    canvas.paint(_soft(eye), WHITE)
    ir = 8.0 * (1.0 - 0.45 * p[f"iris_small_{side}"])
    ix = cx + p["iris_rotation_y"] * 7.0
    iy = ey - p["iris_rotation_x"] * 6.0
    canvas.paint(_soft(torch.maximum(_ellipse(fx, fy, ix, iy, ir, ir), eye)), IRIS)
    # Closed or happy eye: a lash line (an upward arc for the happy wink).
    happy = p[f"eye_happy_wink_{side}"]
    canvas.paint(_soft(_segment(fx, fy + happy * 0.02 * (fx - cx) ** 2, cx - 13.0, ey, cx + 13.0, ey, 2.0))
                 * (1.0 - open_).clamp(0, 1), LINE)

    # Eyebrow: raised/lowered move it, troubled/angry/happy/serious slant or bend it.
    lift = 8.0 * p[f"eyebrow_raised_{side}"] - 6.0 * p[f"eyebrow_lowered_{side}"] - 3.0 * p[f"eyebrow_serious_{side}"]
    slant = 7.0 * (p[f"eyebrow_angry_{side}"] - p[f"eyebrow_troubled_{side}"]) + 3.0 * p[f"eyebrow_serious_{side}"]
    arch = 4.0 * p[f"eyebrow_happy_{side}"]
    inner, outer = cx - s * 14.0, cx + s * 14.0
    canvas.paint(_soft(_segment(fx, fy, inner, 138.0 - lift + slant, cx, 135.0 - lift - arch, 2.5)), LINE)
    canvas.paint(_soft(_segment(fx, fy, cx, 135.0 - lift - arch, outer, 138.0 - lift - slant * 0.3, 2.5)), LINE)


def _draw_mouth(canvas: _Canvas, p: dict, fx, fy) -> None:
    """Open height from aaa/ooo/uuu/delta, width from iii/eee, corners up/down, smirk tilts it."""
    h = 2.0 + 16.0 * p["mouth_aaa"] + 11.0 * p["mouth_ooo"] + 6.0 * p["mouth_uuu"] + 8.0 * p["mouth_delta"] + 4.0 * p["mouth_eee"]
    w = 16.0 + 10.0 * p["mouth_iii"] + 8.0 * p["mouth_eee"] - 7.0 * p["mouth_uuu"] - 4.0 * p["mouth_ooo"]
    my = 205.0
    tilt = 6.0 * (p["mouth_raised_corner_left"] - p["mouth_raised_corner_right"]
                  - p["mouth_lowered_corner_left"] + p["mouth_lowered_corner_right"]) + 6.0 * p["mouth_smirk"]
    curve = 0.02 * (p["mouth_raised_corner_left"] + p["mouth_raised_corner_right"]
                    - p["mouth_lowered_corner_left"] - p["mouth_lowered_corner_right"])
    mx_ = fx - 256.0
    bent_y = fy + curve * mx_ ** 2 + tilt * mx_ / 30.0
    canvas.paint(_soft(_ellipse(fx, bent_y, 256.0 + 4.0 * p["mouth_smirk"], my, w, h * 0.5 + 0.5)), MOUTH)




class DemoPoser(Poser):
    """A cartoon head and torso that answers to all 45 parameters."""

    def __init__(self, device="auto", name: str = DEMO):
        super().__init__(name, pick_device(device))
        c = (torch.arange(DRAW, dtype=torch.float32, device=self.device) + 0.5) * (SIZE / DRAW)  # 512-px units
        self._y, self._x = c[:, None].expand(DRAW, DRAW), c[None, :].expand(DRAW, DRAW)
        self._rest = None

    def rest_image(self) -> torch.Tensor:
        if self._rest is None:
            self._rest = self._render(torch.zeros(1, NUM_PARAMETERS, device=self.device))[0].clone()
        return self._rest

    def _render(self, pose: torch.Tensor) -> torch.Tensor:
        n = pose.shape[0]
        p = {k: pose[:, i].view(n, 1, 1) for k, i in INDEX.items()}
        canvas = _Canvas(n, self.device)
        bx, by = _draw_body(canvas, p, self._x[None], self._y[None])
        fx, fy = _draw_head(canvas, p, bx, by)
        for side, cx in (("left", 290.0), ("right", 222.0)):  # the character's left is the image's right
            _draw_eye_and_brow(canvas, p, fx, fy, side, cx)
        _draw_mouth(canvas, p, fx, fy)
        # Official convention: linear RGB, premultiplied, [-1, 1].
        lin = srgb_to_linear(canvas.rgb) * canvas.alpha
        out = torch.cat([lin, canvas.alpha], dim=1) * 2.0 - 1.0
        return F.interpolate(out, size=(SIZE, SIZE), mode="bilinear", align_corners=False)

    def describe(self) -> dict:
        d = super().describe()
        d["note"] = "built-in procedural demo character"
        return d


# The demo's moving parts as (rows, cols) boxes in the 512 frame, as drawn above.
_MASK_BOXES = (
    (slice(115, 180), slice(196, 316)),  # both eyes and brows (brows move up to ~125)
    (slice(180, 206), slice(222, 290)),  # the mouth, open to its widest
)


def demo_face_mask() -> torch.Tensor:
    """The demo character's face mask in the distiller's form: float32 [4, 128, 128] in {0, 1} (eyes,
    eyebrows and mouth, inside the student face crop imaging.STUDENT_FACE_ROWS/COLS)."""
    top, left = STUDENT_FACE_ROWS.start, STUDENT_FACE_COLS.start
    m = torch.zeros(STUDENT_FACE_ROWS.stop - top, STUDENT_FACE_COLS.stop - left)
    for rows, cols in _MASK_BOXES:
        m[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = 1.0
    return m[None].expand(4, -1, -1).contiguous()


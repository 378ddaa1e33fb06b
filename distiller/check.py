"""`distiller check`: find problems with the character image and face mask before hours are spent
(protocols/tha4_model.md, "Character checks").

Each problem is one sentence saying what is wrong and what THA4 expects. An empty list means the inputs are usable.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tha4bridge.imaging import STUDENT_FACE_COLS, STUDENT_FACE_ROWS

# rows, rows, cols, cols of the student face region: the only part of the frame the face morpher draws
FACE_BOX = (STUDENT_FACE_ROWS.start, STUDENT_FACE_ROWS.stop, STUDENT_FACE_COLS.start, STUDENT_FACE_COLS.stop)
_REGION = "rows {}-{}, columns {}-{}".format(*FACE_BOX)
# Where the movable parts must be covered by the mask (inside the face box): two eye/eyebrow areas and the mouth.
MASK_PARTS = {
    "the eye and eyebrow on the image's left": (96, 168, 192, 256),
    "the eye and eyebrow on the image's right": (96, 168, 256, 320),
    "the mouth": (160, 208, 216, 296),
}


def _open(path: str | Path, what: str, size_rule: str) -> tuple[Image.Image | None, list[str]]:
    """The PNG at `path` if it is one and 512x512; else None and the one sentence saying why not."""
    path = Path(path)
    if not path.is_file():
        return None, [f"The {what} {path} does not exist."]
    if path.suffix.lower() != ".png":
        return None, [f"The {what} {path} must be a .png file."]
    try:
        im = Image.open(path)
        im.load()
    except Exception as e:
        return None, [f"The {what} {path} is not a readable PNG ({type(e).__name__})."]
    if im.size != (512, 512):  # said, and the checks that do not depend on the size still run
        return im, [f"The {what} is {im.size[0]}x{im.size[1]}; {size_rule}."]
    return im, []


def check_image(path: str | Path) -> list[str]:
    im, problems = _open(path, "character image", "THA4 needs exactly 512x512")
    if im is None:
        return problems
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if not has_alpha:
        return problems + [f"The character image has no transparency (mode {im.mode}); it must be RGBA with the "
                           f"background fully transparent."]
    alpha = np.asarray(im.convert("RGBA"))[..., 3]
    if alpha.min() == 255:
        return problems + ["The character image is opaque everywhere; the background must have alpha 0."]
    if problems:  # the placement checks below measure a 512x512 frame
        return problems
    border = np.concatenate([alpha[0], alpha[:, 0], alpha[:, -1]])
    if (border > 0).mean() > 0.05:
        problems.append("The image's top, left or right edge is not transparent; all background pixels must have "
                        "alpha 0 and the character must not touch those edges.")
    r0, r1, c0, c1 = FACE_BOX
    face = alpha[r0:r1, c0:c1]
    if (face > 128).mean() < 0.5:
        problems.append(f"The face region ({_REGION}) is mostly transparent; the head must sit in the 128x128 box "
                        "in the middle of the top half, facing forward.")
    cols = np.nonzero((alpha > 128).any(axis=0))[0]
    if len(cols) and abs((cols[0] + cols[-1]) / 2 - 256) > 96:
        problems.append("The character is not centred horizontally; place it upright in the middle of the image.")
    rows = np.nonzero((alpha[:, c0:c1] > 128).any(axis=1))[0]
    if len(rows) and rows[0] >= r0 + 32:
        problems.append("The top of the head starts below the face region; the head is too low or too small "
                        f"(the face must fill rows {r0}-{r1}).")
    return problems


def check_mask(path: str | Path) -> list[str]:
    im, problems = _open(path, "face mask", "it must be 512x512 like the character image")
    if im is None:
        return problems
    if im.mode != "RGB":
        problems.append(f"The face mask must be an RGB PNG without alpha (black and white), got mode {im.mode}.")
    rgb = np.asarray(im.convert("RGB"))
    if not np.isin(rgb, (0, 255)).all():
        problems.append("The face mask is not binary: every pixel must be pure black (0,0,0) or pure white "
                        "(255,255,255).")
    if im.size != (512, 512):  # where the white lies is measured in a 512x512 frame
        return problems
    white = rgb[..., 0] > 127
    r0, r1, c0, c1 = FACE_BOX
    inside = white[r0:r1, c0:c1]
    if not inside.any():
        return problems + [f"The face mask has no white inside the face region ({_REGION}); cover the eyes, "
                           "eyebrows and mouth there."]
    if white.sum() > inside.sum():
        problems.append(f"The face mask has white outside the face region ({_REGION}); only the face region is "
                        "used, so that part is ignored.")
    if inside.mean() > 0.9:
        problems.append("The face mask covers almost the whole face region; cover only the movable parts (two eye "
                        "rectangles and the mouth) so the extra weight goes where it matters.")
    for part, (a, b, c, d) in MASK_PARTS.items():
        if not white[a:b, c:d].any():
            problems.append(f"The face mask does not cover {part} (rows {a}-{b}, columns {c}-{d}).")
    return problems


MIN_FEATURES_COVERED = 0.6  # measured: own masks cover 75-90% of the face's detail, lambda_01's on lambda_00 46%


def face_detail(rgba: np.ndarray) -> np.ndarray:
    """bool [128, 128]: the face box's most detailed pixels (the top 10% of luminance gradient inside the opaque
    area, away from its outline): the eyes, brows and mouth lines a face mask must cover."""
    from PIL import ImageFilter

    lum = rgba[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    gy, gx = np.gradient(lum)
    opaque = Image.fromarray(((rgba[..., 3] > 250) * 255).astype(np.uint8)).filter(ImageFilter.MinFilter(9))
    g = np.hypot(gx, gy) * (np.asarray(opaque) > 0)  # the outline against the background is no feature
    r0, r1, c0, c1 = FACE_BOX
    g = g[r0:r1, c0:c1]
    if not (g > 0).any():
        return np.zeros_like(g, dtype=bool)
    return g > np.percentile(g[g > 0], 90)


def check_pair(image: str | Path, mask: str | Path) -> list[str]:
    """Does the mask sit on this image's face? (A mask made for another character passes check_mask alone.)"""
    try:
        with Image.open(image) as im, Image.open(mask) as mk:
            if im.size != (512, 512) or mk.size != (512, 512):
                return []  # already said by check_image / check_mask
            rgba, white = np.asarray(im.convert("RGBA")), np.asarray(mk.convert("L")) > 127
    except Exception:
        return []  # an unreadable file: already said
    detail = face_detail(rgba)
    if detail.sum() < 50:
        return []  # a face without enough detail to judge (the image checks say what is wrong with it)
    r0, r1, c0, c1 = FACE_BOX
    covered = (detail & white[r0:r1, c0:c1]).sum() / detail.sum()
    if covered < MIN_FEATURES_COVERED:
        return [f"The face mask covers only {covered:.0%} of this image's eyes, eyebrows and mouth (its most "
                f"detailed pixels in the face region); it seems made for another character or placed off the "
                f"face: move its white areas onto this face's eyes and mouth."]
    return []


def check_inputs(image: str | Path | None, mask: str | Path | None) -> list[str]:
    problems = []
    if image:
        problems += check_image(image)
    if mask:
        problems += check_mask(mask)
    if image and mask:
        problems += check_pair(image, mask)
    return problems

"""Blendshape and bone names as senders spell them, normalised to one lookup key.

Senders disagree on spelling: ARKit says `eyeBlinkLeft`, perfect-sync VRM clips say `EyeBlinkLeft`,
iFacialMocap says `eyeBlink_L`, old UniVRM said `BLINK_L`. Everything is matched on `normalise(name)`:
lower-case, spaces/dashes dropped, a trailing `_l`/`_r` turned into `left`/`right`.
"""
from __future__ import annotations

ARKIT_NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "tongueOut",
)
assert len(ARKIT_NAMES) == 52
ARKIT_INDEX: dict[str, int] = {n: i for i, n in enumerate(ARKIT_NAMES)}
A = ARKIT_INDEX  # short alias for the converter's formulas

# VRM expression presets, VRM 0.x names with their VRM 1.0 synonyms folded onto them.
VRM_PRESETS: tuple[str, ...] = (
    "a", "i", "u", "e", "o", "blink", "blinkleft", "blinkright", "joy", "angry", "sorrow", "fun",
    "surprised", "lookup", "lookdown", "lookleft", "lookright", "neutral",
)
VRM_INDEX: dict[str, int] = {n: i for i, n in enumerate(VRM_PRESETS)}
_VRM1_TO_VRM0 = {"aa": "a", "ih": "i", "ou": "u", "ee": "e", "oh": "o", "happy": "joy", "sad": "sorrow",
                 "relaxed": "fun"}

# Bones we read from /VMC/Ext/Bone/Pos; everything else is ignored.
BONES: tuple[str, ...] = ("Hips", "Spine", "Chest", "UpperChest", "Neck", "Head", "LeftEye", "RightEye", "Jaw")
BONE_INDEX: dict[str, int] = {n.lower(): i for i, n in enumerate(BONES)}


def normalise(name: str) -> str:
    """`eyeBlink_L`, `EyeBlinkLeft`, `EYE_BLINK_LEFT`? -> `eyeblinkleft`; `Blink_L` -> `blinkleft`."""
    k = name.strip().lower().replace(" ", "").replace("-", "")
    if k.endswith("_l"):
        k = k[:-2] + "left"
    elif k.endswith("_r"):
        k = k[:-2] + "right"
    return k.replace("_", "")


_ARKIT_BY_KEY = {normalise(n): i for i, n in enumerate(ARKIT_NAMES)}
_VRM_BY_KEY = {k: i for i, k in enumerate(VRM_PRESETS)}
_VRM_BY_KEY.update({k: VRM_INDEX[v] for k, v in _VRM1_TO_VRM0.items()})


def classify_blend(name: str) -> tuple[str, int]:
    """('arkit', index) | ('vrm', index) | ('other', -1) for a blendshape name as sent."""
    k = normalise(name)
    i = _ARKIT_BY_KEY.get(k)
    if i is not None:
        return "arkit", i
    i = _VRM_BY_KEY.get(k)
    if i is not None:
        return "vrm", i
    return "other", -1


def arkit_index(name: str) -> int:
    """ARKit index for any spelling, or -1."""
    return _ARKIT_BY_KEY.get(normalise(name), -1)


# For the "is half the face switched off on the phone?" check (users hit this: protocols/trackers.md,
# "What users run into").
UPPER_FACE = tuple(i for i, n in enumerate(ARKIT_NAMES) if n.startswith(("brow", "eye")))
LOWER_FACE = tuple(i for i, n in enumerate(ARKIT_NAMES) if n.startswith(("mouth", "jaw", "cheek")))


def face_warnings(values) -> list[str]:
    """Human hints when a whole half of a received ARKit face is exactly 0."""
    out = []
    if all(values[i] == 0.0 for i in UPPER_FACE):
        out.append("every eye/brow value is 0: is the tracker's upper-face capture switched off?")
    if all(values[i] == 0.0 for i in LOWER_FACE):
        out.append("every mouth/jaw value is 0: is the tracker's lower-face capture switched off?")
    return out

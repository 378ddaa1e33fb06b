"""What a tracker's values become: every constant of the mapping to the 45 THA4 parameters, and its tables.

`MappingConfig` holds the official converter's constants (protocols/trackers.md, "ARKit to THA4") and our
fixes; arkit.py applies them to ARKit faces. `vrm_pose_matrix` turns VRM expression presets into parameters
through an editable table, `head_params` turns head angles into head/neck values, and `swap_index` and
`gain_offset_arrays` are the user's per-parameter adjustments. Breathing is not a tracker output; the
animator's clock always drives it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..pose import INDEX, NUM_PARAMETERS, PARAMETER_NAMES
from .names import VRM_INDEX, VRM_PRESETS


def lr(stem: str) -> tuple[int, int]:
    """Pose indices of a left/right parameter pair."""
    return INDEX[f"{stem}_left"], INDEX[f"{stem}_right"]


# Where browDown goes (eyebrow_down_mode) and where a blink goes (wink_mode), as the official converter offers.
BROW_DOWN_TARGETS = {mode: lr(f"eyebrow_{mode}") for mode in ("troubled", "angry", "lowered", "serious")}
WINK_TARGETS = {"normal": lr("eye_wink"), "relaxed": lr("eye_relaxed")}

# VRM preset -> {parameter or parameter stem: weight}. A stem without _left/_right means both sides.
DEFAULT_VRM_TABLE: dict[str, dict[str, float]] = {
    "a": {"mouth_aaa": 1.0}, "i": {"mouth_iii": 1.0}, "u": {"mouth_uuu": 1.0}, "e": {"mouth_eee": 1.0},
    "o": {"mouth_ooo": 1.0},
    "blink": {"eye_wink": 1.0}, "blinkleft": {"eye_wink_left": 1.0}, "blinkright": {"eye_wink_right": 1.0},
    "joy": {"eye_happy_wink": 1.0, "mouth_raised_corner": 1.0, "eyebrow_happy": 1.0},
    "angry": {"eyebrow_angry": 1.0}, "sorrow": {"eyebrow_troubled": 1.0}, "fun": {"eye_relaxed": 1.0},
    "surprised": {"eye_surprised": 1.0, "eyebrow_raised": 1.0},
    "lookup": {"iris_rotation_x": 1.0}, "lookdown": {"iris_rotation_x": -1.0},
    "lookleft": {"iris_rotation_y": -1.0}, "lookright": {"iris_rotation_y": 1.0},
    "neutral": {},
}


@dataclass
class MappingConfig:
    """Every constant of the mapping. Defaults are the official converter's (protocols/trackers.md, "ARKit to
    THA4") plus our fixes. (`duplicates` pairs runs of these fields by their shape, `name: float = number`:
    a list of constants, not repeated logic.)"""

    # Official ARKit converter constants.
    smile_threshold_min: float = 0.4
    smile_threshold_max: float = 0.6
    eyebrow_down_mode: str = "angry"  # troubled | angry | lowered | serious
    wink_mode: str = "normal"  # normal | relaxed
    eye_surprised_max: float = 0.5
    eye_blink_max: float = 0.8
    eyebrow_down_max: float = 0.4
    cheek_squint_min: float = 0.1
    cheek_squint_max: float = 0.7
    eye_rotation_factor: float = 1.0 / 0.75
    jaw_open_min: float = 0.1
    jaw_open_max: float = 0.4
    mouth_frown_max: float = 0.6
    mouth_funnel_min: float = 0.25
    mouth_funnel_max: float = 0.5
    iris_small_left: float = 0.0
    iris_small_right: float = 0.0
    # True reproduces the official output exactly, bugs included (used to check against its golden vectors).
    official: bool = False
    # Our fixes (ignored when official). Ramps are (min, max) on ARKit values.
    jaw_fallback: bool = True  # opening the vowel fit does not explain goes to mouth_aaa
    mouth_frown_min: float = 0.05  # dead zone for the lowered corners (resting faces read 0.04-0.06)
    smirk_min: float = 0.2  # |smileLeft - smileRight|
    smirk_max: float = 0.6
    delta_upper_up_min: float = 0.3  # mean mouthUpperUp; needs an open mouth
    delta_upper_up_max: float = 0.7
    unimpressed_squint_min: float = 0.3  # eyeSquint, not while blinking or smiling
    unimpressed_squint_max: float = 0.8
    # Head: degrees in iFacialMocap convention (X pitch, Y yaw, Z roll), a sign per axis because senders
    # disagree, and the official saturation angles. body = body_follow * head (official: 1.0).
    head_sign_x: float = 1.0
    head_sign_y: float = 1.0
    head_sign_z: float = 1.0
    head_max_pitch: float = 15.0
    head_max_yaw: float = 10.0
    head_max_roll: float = 15.0
    body_follow: float = 1.0
    # Iris from VMC eye bones when no eyeLook* blendshapes arrive (protocols/trackers.md, "Iris").
    eye_bone_max_deg: float = 12.0
    iris_sign_x: float = 1.0
    iris_sign_y: float = 1.0
    vrm: dict[str, dict[str, float]] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_VRM_TABLE.items()})
    # Applied after mapping and calibration: p * gain + offset per parameter, then an optional left/right swap.
    gain: dict[str, float] = field(default_factory=dict)
    offset: dict[str, float] = field(default_factory=dict)
    swap_left_right: bool = False

    def check(self) -> None:
        if self.eyebrow_down_mode not in BROW_DOWN_TARGETS:
            raise ValueError(f"eyebrow_down_mode must be one of {sorted(BROW_DOWN_TARGETS)}, "
                             f"got {self.eyebrow_down_mode!r}")
        if self.wink_mode not in WINK_TARGETS:
            raise ValueError(f"wink_mode must be 'normal' or 'relaxed', got {self.wink_mode!r}")
        for table in (self.gain, self.offset):
            for name in table:
                if name not in INDEX:
                    raise ValueError(f"unknown pose parameter {name!r}")
        vrm_pose_matrix(self)  # validates the table


def head_params(x: float, y: float, z: float, cfg: MappingConfig) -> tuple[float, float, float]:
    """(head_x, head_y, neck_z) from iFacialMocap-style degrees (protocols/trackers.md, "Head"), with the
    per-axis signs."""
    mp, my, mr = cfg.head_max_pitch, cfg.head_max_yaw, cfg.head_max_roll
    hx = max(-mp, min(mp, -x * cfg.head_sign_x)) / mp if mp > 0 else 0.0
    hy = max(-my, min(my, -y * cfg.head_sign_y)) / my if my > 0 else 0.0
    nz = max(-mr, min(mr, z * cfg.head_sign_z)) / mr if mr > 0 else 0.0
    return hx, hy, nz


def param_targets(key: str, where: str) -> list[int]:
    """Pose indices a user's key names: a parameter, or a stem meaning both sides (`eye_wink`)."""
    if key in INDEX:
        return [INDEX[key]]
    if f"{key}_left" in INDEX:
        return list(lr(key))
    raise ValueError(f"unknown pose parameter {key!r} in {where}")


def vrm_pose_matrix(cfg: MappingConfig) -> np.ndarray:
    """[len(VRM_PRESETS), 45] so that pose = preset_weights @ matrix."""
    m = np.zeros((len(VRM_PRESETS), NUM_PARAMETERS), dtype=np.float32)
    for preset, targets in cfg.vrm.items():
        i = VRM_INDEX.get(preset.lower())
        if i is None:
            raise ValueError(f"unknown VRM preset {preset!r} (known: {', '.join(VRM_PRESETS)})")
        m[i] = 0.0
        for key, weight in targets.items():
            for j in param_targets(key, "the VRM table"):
                m[i, j] = float(weight)
    return m


def swap_index() -> np.ndarray:
    """Permutation exchanging every *_left parameter with its *_right partner."""
    idx = np.arange(NUM_PARAMETERS)
    for name, i in INDEX.items():
        if name.endswith("_left"):
            j = INDEX[name[:-5] + "_right"]
            idx[i], idx[j] = j, i
    return idx


def gain_offset_arrays(cfg: MappingConfig) -> tuple[np.ndarray, np.ndarray] | None:
    if not cfg.gain and not cfg.offset:
        return None
    gain = np.ones(NUM_PARAMETERS, dtype=np.float32)
    offset = np.zeros(NUM_PARAMETERS, dtype=np.float32)
    for n, v in cfg.gain.items():
        gain[INDEX[n]] = float(v)
    for n, v in cfg.offset.items():
        offset[INDEX[n]] = float(v)
    return gain, offset


__all__ = ["MappingConfig", "head_params", "vrm_pose_matrix", "swap_index", "gain_offset_arrays",
           "DEFAULT_VRM_TABLE", "PARAMETER_NAMES", "BROW_DOWN_TARGETS", "WINK_TARGETS", "lr", "param_targets"]

"""Tracker values -> the 45 THA4 parameters.

`arkit_to_pose` restates the official iFacialMocap converter (facts §3) as plain scalar Python (faster than
numpy for 52 numbers) and, unless `official=True`, fixes what it gets wrong: the inverted frown test that
kills the lowered corners, and the parameters it never drives (`mouth_eee`, `mouth_delta`, `mouth_smirk`,
`eye_unimpressed_*`). Missing keys cannot crash it: inputs are a dense 52-value list, absent keys are 0 or the
sender's last value. `vrm_pose_matrix` turns VRM expression presets into parameters through an editable table.
Breathing is not a tracker output; the idle clock always drives it (idle.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..pose import INDEX, NUM_PARAMETERS, PARAMETER_NAMES
from .names import A, VRM_INDEX, VRM_PRESETS
from .vowels import DEFAULT_SOLVER

_BROW_DOWN_GROUP = {"troubled": 0, "angry": 2, "lowered": 4, "serious": 10}

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
    """Every constant of the mapping. Defaults are the official converter's (facts §3.1) plus our fixes."""

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
    # Iris from VMC eye bones when no eyeLook* blendshapes arrive (facts §3.5).
    eye_bone_max_deg: float = 12.0
    iris_sign_x: float = 1.0
    iris_sign_y: float = 1.0
    vrm: dict[str, dict[str, float]] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_VRM_TABLE.items()})
    # Applied after mapping and calibration: p * gain + offset per parameter, then an optional left/right swap.
    gain: dict[str, float] = field(default_factory=dict)
    offset: dict[str, float] = field(default_factory=dict)
    swap_left_right: bool = False

    def check(self) -> None:
        if self.eyebrow_down_mode not in _BROW_DOWN_GROUP:
            raise ValueError(f"eyebrow_down_mode must be one of {sorted(_BROW_DOWN_GROUP)}, "
                             f"got {self.eyebrow_down_mode!r}")
        if self.wink_mode not in ("normal", "relaxed"):
            raise ValueError(f"wink_mode must be 'normal' or 'relaxed', got {self.wink_mode!r}")
        for table in (self.gain, self.offset):
            for name in table:
                if name not in INDEX:
                    raise ValueError(f"unknown pose parameter {name!r}")
        vrm_pose_matrix(self)  # validates the table


def _clamp01(v: float) -> float:
    return 0.0 if v < 0.0 else 1.0 if v > 1.0 else v


def _ramp(v: float, lo: float, hi: float) -> float:
    if hi <= lo:
        return 0.0
    return _clamp01((v - lo) / (hi - lo))


def _clamp1(v: float) -> float:
    return -1.0 if v < -1.0 else 1.0 if v > 1.0 else v


# Indices used by the formulas.
_SMILE_L, _SMILE_R, _SHRUG_U = A["mouthSmileLeft"], A["mouthSmileRight"], A["mouthShrugUpper"]
_BIU, _BOU_L, _BOU_R = A["browInnerUp"], A["browOuterUpLeft"], A["browOuterUpRight"]
_BD_L, _BD_R = A["browDownLeft"], A["browDownRight"]
_WIDE_L, _WIDE_R = A["eyeWideLeft"], A["eyeWideRight"]
_BLINK_L, _BLINK_R = A["eyeBlinkLeft"], A["eyeBlinkRight"]
_CHEEK_L, _CHEEK_R = A["cheekSquintLeft"], A["cheekSquintRight"]
_SQ_L, _SQ_R = A["eyeSquintLeft"], A["eyeSquintRight"]
_IN_L, _IN_R, _OUT_L, _OUT_R = A["eyeLookInLeft"], A["eyeLookInRight"], A["eyeLookOutLeft"], A["eyeLookOutRight"]
_UP_L, _UP_R, _DN_L, _DN_R = A["eyeLookUpLeft"], A["eyeLookUpRight"], A["eyeLookDownLeft"], A["eyeLookDownRight"]
_JAW, _LD_L, _LD_R = A["jawOpen"], A["mouthLowerDownLeft"], A["mouthLowerDownRight"]
_FUNNEL, _PUCKER = A["mouthFunnel"], A["mouthPucker"]
_FROWN_L, _FROWN_R = A["mouthFrownLeft"], A["mouthFrownRight"]
_UU_L, _UU_R = A["mouthUpperUpLeft"], A["mouthUpperUpRight"]
EYE_LOOK = (_IN_L, _IN_R, _OUT_L, _OUT_R, _UP_L, _UP_R, _DN_L, _DN_R)


def head_params(x: float, y: float, z: float, cfg: MappingConfig) -> tuple[float, float, float]:
    """(head_x, head_y, neck_z) from iFacialMocap-style degrees (facts §3.6), with the per-axis signs."""
    mp, my, mr = cfg.head_max_pitch, cfg.head_max_yaw, cfg.head_max_roll
    hx = max(-mp, min(mp, -x * cfg.head_sign_x)) / mp if mp > 0 else 0.0
    hy = max(-my, min(my, -y * cfg.head_sign_y)) / my if my > 0 else 0.0
    nz = max(-mr, min(mr, z * cfg.head_sign_z)) / mr if mr > 0 else 0.0
    return hx, hy, nz


def arkit_to_pose(b, head_deg, cfg: MappingConfig) -> list[float]:
    """45 floats from 52 ARKit values in [0,1] (`names.ARKIT_NAMES` order) and head angles in degrees."""
    o = [0.0] * NUM_PARAMETERS
    smile = (b[_SMILE_L] + b[_SMILE_R]) / 2.0 + b[_SHRUG_U]
    d = _ramp(smile, cfg.smile_threshold_min, cfg.smile_threshold_max)
    smile01 = _clamp01(smile)

    # Eyebrows.
    o[6] = _clamp01(b[_BIU] + b[_BOU_L])
    o[7] = _clamp01(b[_BIU] + b[_BOU_R])
    if cfg.eyebrow_down_max > 0:
        g = _BROW_DOWN_GROUP[cfg.eyebrow_down_mode]
        o[g] = (1.0 - d) * _clamp01(b[_BD_L] / cfg.eyebrow_down_max)
        o[g + 1] = (1.0 - d) * _clamp01(b[_BD_R] / cfg.eyebrow_down_max)
    o[8] = o[9] = smile01 * d

    # Eyes.
    if cfg.eye_surprised_max > 0:
        o[16] = _clamp01(b[_WIDE_L] / cfg.eye_surprised_max)
        o[17] = _clamp01(b[_WIDE_R] / cfg.eye_surprised_max)
    kl = kr = 0.0
    if cfg.eye_blink_max > 0:
        kl = _clamp01(b[_BLINK_L] / cfg.eye_blink_max)
        kr = _clamp01(b[_BLINK_R] / cfg.eye_blink_max)
        w = 12 if cfg.wink_mode == "normal" else 18
        o[w] = (1.0 - d) * kl
        o[w + 1] = (1.0 - d) * kr
        o[14] = d * kl
        o[15] = d * kr
    o[22] = _ramp(b[_CHEEK_L], cfg.cheek_squint_min, cfg.cheek_squint_max)
    o[23] = _ramp(b[_CHEEK_R], cfg.cheek_squint_min, cfg.cheek_squint_max)

    # Iris.
    o[24], o[25] = cfg.iris_small_left, cfg.iris_small_right
    f = cfg.eye_rotation_factor
    o[37] = _clamp1((b[_UP_L] + b[_UP_R] - b[_DN_L] - b[_DN_R]) / 2.0 * f)
    o[38] = _clamp1((b[_IN_L] - b[_OUT_L] - b[_IN_R] + b[_OUT_R]) / 2.0 * f)

    # Head, neck, body.
    hx, hy, nz = head_params(head_deg[0], head_deg[1], head_deg[2], cfg)
    o[39], o[40], o[41] = hx, hy, nz
    o[42], o[43] = hy * cfg.body_follow, nz * cfg.body_follow

    # Mouth.
    mouth_open = _ramp(b[_JAW], cfg.jaw_open_min, cfg.jaw_open_max)
    o[34] = o[35] = smile01
    if mouth_open > 0.0:
        w = DEFAULT_SOLVER.solve((mouth_open, _clamp01(b[_LD_L] + b[_LD_R]), b[_FUNNEL], b[_PUCKER]))
        aaa, iii, uo = float(w[0]), float(w[1]), _clamp01(float(w[2]) + float(w[3]))
        alpha = _ramp(b[_FUNNEL], cfg.mouth_funnel_min, cfg.mouth_funnel_max)
        if not cfg.official:
            # Jaw open with no lip shape (p = (1, 0, 0, 0)) fits no vowel well and the official fit leaves the
            # mouth nearly shut; the opening the vowels do not explain goes to aaa.
            explained = aaa + 0.5 * float(w[2]) + float(w[3])
            if cfg.jaw_fallback and mouth_open > explained:
                aaa = _clamp01(aaa + mouth_open - explained)
            # An "e" sits halfway between the aaa and iii prototypes, (0.5, 1, 0, 0) = (aaa + iii) / 2, so
            # the part of a fit that mixes both is an eee.
            m = min(aaa, iii)
            o[29] = _clamp01(2.0 * m)
            aaa -= m
            iii -= m
        o[26], o[27] = aaa, iii
        o[28] = uo * (1.0 - alpha)
        o[30] = uo * alpha
    if cfg.official:
        return o  # lowered corners stay 0 (inverted frown test), eee/delta/smirk/unimpressed never driven

    # Fixes: the frown test the official code inverted; parameters it never drives.
    lo, hi = cfg.mouth_frown_min, cfg.mouth_frown_max
    o[32] = (1.0 - smile01) * _ramp(b[_FROWN_L], lo, hi)
    o[33] = (1.0 - smile01) * _ramp(b[_FROWN_R], lo, hi)
    if mouth_open > 0.0:
        o[31] = min(mouth_open, _ramp((b[_UU_L] + b[_UU_R]) / 2.0, cfg.delta_upper_up_min, cfg.delta_upper_up_max))
    o[36] = _ramp(abs(b[_SMILE_L] - b[_SMILE_R]), cfg.smirk_min, cfg.smirk_max)
    lo, hi = cfg.unimpressed_squint_min, cfg.unimpressed_squint_max
    o[20] = (1.0 - kl) * (1.0 - d) * _ramp(b[_SQ_L], lo, hi)
    o[21] = (1.0 - kr) * (1.0 - d) * _ramp(b[_SQ_R], lo, hi)
    return o


class ArkitConverter:
    """`arkit_to_pose` with the constants folded in and the clamps inlined: the same numbers, about twice as
    fast, because this runs once per datagram on the receiver thread. `arkit_to_pose` stays the readable
    statement of the formulas; a property test keeps the two equal."""

    def __init__(self, cfg: MappingConfig, solver=None):
        self.cfg = cfg
        self.solver = solver or DEFAULT_SOLVER

        def slope(lo: float, hi: float) -> tuple[float, float]:  # ramp(v) = clamp01((v - lo) * k), k = 0 if hi <= lo
            return (lo, 1.0 / (hi - lo)) if hi > lo else (lo, 0.0)

        self.smile = slope(cfg.smile_threshold_min, cfg.smile_threshold_max)
        self.brow = 1.0 / cfg.eyebrow_down_max if cfg.eyebrow_down_max > 0 else None
        self.brow_group = _BROW_DOWN_GROUP[cfg.eyebrow_down_mode]
        self.wide = 1.0 / cfg.eye_surprised_max if cfg.eye_surprised_max > 0 else None
        self.blink = 1.0 / cfg.eye_blink_max if cfg.eye_blink_max > 0 else None
        self.wink = 12 if cfg.wink_mode == "normal" else 18
        self.cheek = slope(cfg.cheek_squint_min, cfg.cheek_squint_max)
        self.jaw = slope(cfg.jaw_open_min, cfg.jaw_open_max)
        self.funnel = slope(cfg.mouth_funnel_min, cfg.mouth_funnel_max)
        self.frown = slope(cfg.mouth_frown_min, cfg.mouth_frown_max)
        self.smirk = slope(cfg.smirk_min, cfg.smirk_max)
        self.delta = slope(cfg.delta_upper_up_min, cfg.delta_upper_up_max)
        self.squint = slope(cfg.unimpressed_squint_min, cfg.unimpressed_squint_max)
        self.iris_f = cfg.eye_rotation_factor / 2.0

    def __call__(self, b, head_deg) -> list[float]:
        c = self.cfg
        o = [0.0] * NUM_PARAMETERS
        smile = (b[_SMILE_L] + b[_SMILE_R]) / 2.0 + b[_SHRUG_U]
        lo, k = self.smile
        d = (smile - lo) * k
        d = 0.0 if d <= 0.0 else 1.0 if d >= 1.0 else d
        nd = 1.0 - d
        s01 = 0.0 if smile <= 0.0 else 1.0 if smile >= 1.0 else smile

        biu = b[_BIU]
        x = biu + b[_BOU_L]
        o[6] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        x = biu + b[_BOU_R]
        o[7] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        if self.brow is not None:
            g = self.brow_group
            x = b[_BD_L] * self.brow
            o[g] = nd * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
            x = b[_BD_R] * self.brow
            o[g + 1] = nd * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        o[8] = o[9] = s01 * d

        if self.wide is not None:
            x = b[_WIDE_L] * self.wide
            o[16] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
            x = b[_WIDE_R] * self.wide
            o[17] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        kl = kr = 0.0
        if self.blink is not None:
            x = b[_BLINK_L] * self.blink
            kl = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
            x = b[_BLINK_R] * self.blink
            kr = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
            w = self.wink
            o[w] = nd * kl
            o[w + 1] = nd * kr
            o[14] = d * kl
            o[15] = d * kr
        lo, k = self.cheek
        x = (b[_CHEEK_L] - lo) * k
        o[22] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        x = (b[_CHEEK_R] - lo) * k
        o[23] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x

        o[24], o[25] = c.iris_small_left, c.iris_small_right
        f = self.iris_f
        x = (b[_UP_L] + b[_UP_R] - b[_DN_L] - b[_DN_R]) * f
        o[37] = -1.0 if x <= -1.0 else 1.0 if x >= 1.0 else x
        x = (b[_IN_L] - b[_OUT_L] - b[_IN_R] + b[_OUT_R]) * f
        o[38] = -1.0 if x <= -1.0 else 1.0 if x >= 1.0 else x

        hx, hy, nz = head_params(head_deg[0], head_deg[1], head_deg[2], c)
        o[39], o[40], o[41] = hx, hy, nz
        o[42], o[43] = hy * c.body_follow, nz * c.body_follow

        lo, k = self.jaw
        mo = (b[_JAW] - lo) * k
        mo = 0.0 if mo <= 0.0 else 1.0 if mo >= 1.0 else mo
        o[34] = o[35] = s01
        official = c.official
        if mo > 0.0:
            ld = b[_LD_L] + b[_LD_R]
            ld = 0.0 if ld <= 0.0 else 1.0 if ld >= 1.0 else ld
            funnel = b[_FUNNEL]
            w0, w1, w2, w3 = self.solver.solve((mo, ld, funnel, b[_PUCKER]))
            aaa, iii = float(w0), float(w1)
            uo = float(w2) + float(w3)
            uo = 0.0 if uo <= 0.0 else 1.0 if uo >= 1.0 else uo
            lo, k = self.funnel
            alpha = (funnel - lo) * k
            alpha = 0.0 if alpha <= 0.0 else 1.0 if alpha >= 1.0 else alpha
            if not official:
                explained = aaa + 0.5 * float(w2) + float(w3)
                if c.jaw_fallback and mo > explained:
                    aaa = aaa + mo - explained
                    aaa = 0.0 if aaa <= 0.0 else 1.0 if aaa >= 1.0 else aaa
                m = aaa if aaa < iii else iii
                x = 2.0 * m
                o[29] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
                aaa -= m
                iii -= m
            o[26], o[27] = aaa, iii
            o[28] = uo * (1.0 - alpha)
            o[30] = uo * alpha
        if official:
            return o

        ns = 1.0 - s01
        lo, k = self.frown
        x = (b[_FROWN_L] - lo) * k
        o[32] = ns * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        x = (b[_FROWN_R] - lo) * k
        o[33] = ns * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        if mo > 0.0:
            lo, k = self.delta
            x = ((b[_UU_L] + b[_UU_R]) / 2.0 - lo) * k
            x = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
            o[31] = mo if mo < x else x
        lo, k = self.smirk
        x = (abs(b[_SMILE_L] - b[_SMILE_R]) - lo) * k
        o[36] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        lo, k = self.squint
        x = (b[_SQ_L] - lo) * k
        o[20] = (1.0 - kl) * nd * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        x = (b[_SQ_R] - lo) * k
        o[21] = (1.0 - kr) * nd * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        return o


def _param_targets(key: str) -> list[int]:
    if key in INDEX:
        return [INDEX[key]]
    if f"{key}_left" in INDEX:
        return [INDEX[f"{key}_left"], INDEX[f"{key}_right"]]
    raise ValueError(f"unknown pose parameter {key!r} in the VRM table")


def vrm_pose_matrix(cfg: MappingConfig) -> np.ndarray:
    """[len(VRM_PRESETS), 45] so that pose = preset_weights @ matrix."""
    m = np.zeros((len(VRM_PRESETS), NUM_PARAMETERS), dtype=np.float32)
    for preset, targets in cfg.vrm.items():
        i = VRM_INDEX.get(preset.lower())
        if i is None:
            raise ValueError(f"unknown VRM preset {preset!r} (known: {', '.join(VRM_PRESETS)})")
        m[i] = 0.0
        for key, weight in targets.items():
            for j in _param_targets(key):
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


def quat_to_unity_euler(x: float, y: float, z: float, w: float) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees, Unity's Z-X-Y decomposition (facts §1.4)."""
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * x - y * z))))
    yaw = math.atan2(2.0 * (x * z + w * y), 1.0 - 2.0 * (x * x + y * y))
    roll = math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z))
    return math.degrees(pitch), math.degrees(yaw), math.degrees(roll)


def quat_mul(a, b):
    """Hamilton product a*b of (x, y, z, w) quaternions (a is the parent)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz)


__all__ = ["MappingConfig", "arkit_to_pose", "head_params", "vrm_pose_matrix", "swap_index", "gain_offset_arrays",
           "quat_to_unity_euler", "quat_mul", "DEFAULT_VRM_TABLE", "PARAMETER_NAMES"]

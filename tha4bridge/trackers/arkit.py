"""ARKit faces -> the 45 THA4 parameters: the official iFacialMocap converter, restated, and our fixes.

`arkit_to_pose` restates the official converter (protocols/trackers.md, "ARKit to THA4") as plain scalar
Python (faster than numpy for 52 numbers) and, unless `official=True`, fixes what it gets wrong: the inverted
frown test that kills the lowered corners, and the parameters it never drives (`mouth_eee`, `mouth_delta`,
`mouth_smirk`, `eye_unimpressed_*`). Missing keys cannot crash it: inputs are a dense 52-value list, absent
keys are 0 or the sender's last value.

Two implementations of the same numbers, on purpose: `arkit_to_pose` is the readable statement, one small
function per feature, that a maintainer checks against the official code and the golden vectors;
`ArkitConverter` folds the constants and inlines every clamp, about twice as fast, because it runs once per
datagram on the receiver thread. tests/trackers/test_mapping.py keeps the two equal to 1e-12 over random
faces and three configurations; change one and the test names the other.
"""
from __future__ import annotations

from ..pose import INDEX, NUM_PARAMETERS
from .mapping import BROW_DOWN_TARGETS, WINK_TARGETS, MappingConfig, head_params, lr
from .names import A
from .vowels import DEFAULT_SOLVER

# ARKit inputs (indices into the 52 values).
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

# THA4 outputs (indices into the 45 parameters), as ints: this is a plain-Python hot path.
_EYEBROW_RAISED_L, _EYEBROW_RAISED_R = lr("eyebrow_raised")
_EYEBROW_HAPPY_L, _EYEBROW_HAPPY_R = lr("eyebrow_happy")
_EYE_HAPPY_WINK_L, _EYE_HAPPY_WINK_R = lr("eye_happy_wink")
_EYE_SURPRISED_L, _EYE_SURPRISED_R = lr("eye_surprised")
_EYE_UNIMPRESSED_L, _EYE_UNIMPRESSED_R = lr("eye_unimpressed")
_EYE_LOWER_LID_L, _EYE_LOWER_LID_R = lr("eye_raised_lower_eyelid")
_IRIS_SMALL_L, _IRIS_SMALL_R = lr("iris_small")
_MOUTH_AAA, _MOUTH_III, _MOUTH_UUU = INDEX["mouth_aaa"], INDEX["mouth_iii"], INDEX["mouth_uuu"]
_MOUTH_EEE, _MOUTH_OOO, _MOUTH_DELTA = INDEX["mouth_eee"], INDEX["mouth_ooo"], INDEX["mouth_delta"]
_MOUTH_LOWERED_L, _MOUTH_LOWERED_R = lr("mouth_lowered_corner")
_MOUTH_RAISED_L, _MOUTH_RAISED_R = lr("mouth_raised_corner")
_MOUTH_SMIRK = INDEX["mouth_smirk"]
_IRIS_X, _IRIS_Y = INDEX["iris_rotation_x"], INDEX["iris_rotation_y"]
_HEAD_X, _HEAD_Y, _NECK_Z = INDEX["head_x"], INDEX["head_y"], INDEX["neck_z"]
_BODY_Y, _BODY_Z = INDEX["body_y"], INDEX["body_z"]


def _clamp01(v: float) -> float:
    return 0.0 if v < 0.0 else 1.0 if v > 1.0 else v


def _ramp(v: float, lo: float, hi: float) -> float:
    if hi <= lo:
        return 0.0
    return _clamp01((v - lo) / (hi - lo))


def _clamp1(v: float) -> float:
    return -1.0 if v < -1.0 else 1.0 if v > 1.0 else v


# -- the readable statement ----------------------------------------------------------------------------------
def arkit_to_pose(b, head_deg, cfg: MappingConfig) -> list[float]:
    """45 floats from 52 ARKit values in [0,1] (`names.ARKIT_NAMES` order) and head angles in degrees."""
    o = [0.0] * NUM_PARAMETERS
    smile = (b[_SMILE_L] + b[_SMILE_R]) / 2.0 + b[_SHRUG_U]  # not clamped: the official S
    d = _ramp(smile, cfg.smile_threshold_min, cfg.smile_threshold_max)  # smile degree
    smile01 = _clamp01(smile)
    _brows(o, b, cfg, d, smile01)
    kl, kr = _eyes(o, b, cfg, d)
    _iris(o, b, cfg)
    _head(o, head_deg, cfg)
    mouth_open = _mouth(o, b, cfg, smile01)
    if not cfg.official:  # else lowered corners stay 0 (inverted frown test), eee/delta/smirk/unimpressed undriven
        _fixes(o, b, cfg, d, smile01, kl, kr, mouth_open)
    return o


def _brows(o: list, b, cfg: MappingConfig, d: float, smile01: float) -> None:
    o[_EYEBROW_RAISED_L] = _clamp01(b[_BIU] + b[_BOU_L])
    o[_EYEBROW_RAISED_R] = _clamp01(b[_BIU] + b[_BOU_R])
    if cfg.eyebrow_down_max > 0:
        left, right = BROW_DOWN_TARGETS[cfg.eyebrow_down_mode]
        o[left] = (1.0 - d) * _clamp01(b[_BD_L] / cfg.eyebrow_down_max)
        o[right] = (1.0 - d) * _clamp01(b[_BD_R] / cfg.eyebrow_down_max)
    o[_EYEBROW_HAPPY_L] = o[_EYEBROW_HAPPY_R] = smile01 * d


def _eyes(o: list, b, cfg: MappingConfig, d: float) -> tuple[float, float]:
    """Writes the eyes; returns the blink amounts (kl, kr), which the fixes reuse."""
    if cfg.eye_surprised_max > 0:
        o[_EYE_SURPRISED_L] = _clamp01(b[_WIDE_L] / cfg.eye_surprised_max)
        o[_EYE_SURPRISED_R] = _clamp01(b[_WIDE_R] / cfg.eye_surprised_max)
    kl = kr = 0.0
    if cfg.eye_blink_max > 0:
        kl = _clamp01(b[_BLINK_L] / cfg.eye_blink_max)
        kr = _clamp01(b[_BLINK_R] / cfg.eye_blink_max)
        left, right = WINK_TARGETS[cfg.wink_mode]
        o[left] = (1.0 - d) * kl  # a blink is split between a plain and a happy closed eye by the smile
        o[right] = (1.0 - d) * kr
        o[_EYE_HAPPY_WINK_L] = d * kl
        o[_EYE_HAPPY_WINK_R] = d * kr
    o[_EYE_LOWER_LID_L] = _ramp(b[_CHEEK_L], cfg.cheek_squint_min, cfg.cheek_squint_max)
    o[_EYE_LOWER_LID_R] = _ramp(b[_CHEEK_R], cfg.cheek_squint_min, cfg.cheek_squint_max)
    return kl, kr


def _iris(o: list, b, cfg: MappingConfig) -> None:
    o[_IRIS_SMALL_L], o[_IRIS_SMALL_R] = cfg.iris_small_left, cfg.iris_small_right
    f = cfg.eye_rotation_factor
    o[_IRIS_X] = _clamp1((b[_UP_L] + b[_UP_R] - b[_DN_L] - b[_DN_R]) / 2.0 * f)
    o[_IRIS_Y] = _clamp1((b[_IN_L] - b[_OUT_L] - b[_IN_R] + b[_OUT_R]) / 2.0 * f)


def _head(o: list, head_deg, cfg: MappingConfig) -> None:
    hx, hy, nz = head_params(head_deg[0], head_deg[1], head_deg[2], cfg)
    o[_HEAD_X], o[_HEAD_Y], o[_NECK_Z] = hx, hy, nz
    o[_BODY_Y], o[_BODY_Z] = hy * cfg.body_follow, nz * cfg.body_follow


def _mouth(o: list, b, cfg: MappingConfig, smile01: float) -> float:
    """Writes the vowels and raised corners; returns how open the mouth is (0..1)."""
    mouth_open = _ramp(b[_JAW], cfg.jaw_open_min, cfg.jaw_open_max)
    o[_MOUTH_RAISED_L] = o[_MOUTH_RAISED_R] = smile01
    if mouth_open <= 0.0:
        return mouth_open
    w = DEFAULT_SOLVER.solve((mouth_open, _clamp01(b[_LD_L] + b[_LD_R]), b[_FUNNEL], b[_PUCKER]))
    aaa, iii, uo = float(w[0]), float(w[1]), _clamp01(float(w[2]) + float(w[3]))
    alpha = _ramp(b[_FUNNEL], cfg.mouth_funnel_min, cfg.mouth_funnel_max)
    if not cfg.official:
        # Jaw open with no lip shape (p = (1, 0, 0, 0)) fits no vowel well and the official fit leaves the
        # mouth nearly shut; the opening the vowels do not explain goes to aaa.
        explained = aaa + 0.5 * float(w[2]) + float(w[3])
        if cfg.jaw_fallback and mouth_open > explained:
            aaa = _clamp01(aaa + mouth_open - explained)
        # An "e" sits halfway between the aaa and iii prototypes, (0.5, 1, 0, 0) = (aaa + iii) / 2, so the part
        # of a fit that mixes both is an eee.
        m = min(aaa, iii)
        o[_MOUTH_EEE] = _clamp01(2.0 * m)
        aaa -= m
        iii -= m
    o[_MOUTH_AAA], o[_MOUTH_III] = aaa, iii
    o[_MOUTH_UUU] = uo * (1.0 - alpha)
    o[_MOUTH_OOO] = uo * alpha
    return mouth_open


def _fixes(o: list, b, cfg: MappingConfig, d: float, smile01: float, kl: float, kr: float,
           mouth_open: float) -> None:
    """The frown test the official code inverted, and the parameters it never drives."""
    lo, hi = cfg.mouth_frown_min, cfg.mouth_frown_max
    o[_MOUTH_LOWERED_L] = (1.0 - smile01) * _ramp(b[_FROWN_L], lo, hi)
    o[_MOUTH_LOWERED_R] = (1.0 - smile01) * _ramp(b[_FROWN_R], lo, hi)
    if mouth_open > 0.0:
        upper_up = _ramp((b[_UU_L] + b[_UU_R]) / 2.0, cfg.delta_upper_up_min, cfg.delta_upper_up_max)
        o[_MOUTH_DELTA] = min(mouth_open, upper_up)
    o[_MOUTH_SMIRK] = _ramp(abs(b[_SMILE_L] - b[_SMILE_R]), cfg.smirk_min, cfg.smirk_max)
    lo, hi = cfg.unimpressed_squint_min, cfg.unimpressed_squint_max
    o[_EYE_UNIMPRESSED_L] = (1.0 - kl) * (1.0 - d) * _ramp(b[_SQ_L], lo, hi)
    o[_EYE_UNIMPRESSED_R] = (1.0 - kr) * (1.0 - d) * _ramp(b[_SQ_R], lo, hi)


# -- the hot path ------------------------------------------------------------------------------------------
def _slope(lo: float, hi: float) -> tuple[float, float]:
    """ramp(v) = clamp01((v - lo) * k), with k = 0 when hi <= lo."""
    return (lo, 1.0 / (hi - lo)) if hi > lo else (lo, 0.0)


class ArkitConverter:
    """`arkit_to_pose` with the constants folded in and the clamps inlined: the same numbers, about twice as
    fast (see the module docstring for why both exist)."""

    def __init__(self, cfg: MappingConfig, solver=None):
        self.cfg = cfg
        self.solver = solver or DEFAULT_SOLVER
        self.smile = _slope(cfg.smile_threshold_min, cfg.smile_threshold_max)
        self.brow = 1.0 / cfg.eyebrow_down_max if cfg.eyebrow_down_max > 0 else None
        self.brow_l, self.brow_r = BROW_DOWN_TARGETS[cfg.eyebrow_down_mode]
        self.wide = 1.0 / cfg.eye_surprised_max if cfg.eye_surprised_max > 0 else None
        self.blink = 1.0 / cfg.eye_blink_max if cfg.eye_blink_max > 0 else None
        self.wink_l, self.wink_r = WINK_TARGETS[cfg.wink_mode]
        self.cheek = _slope(cfg.cheek_squint_min, cfg.cheek_squint_max)
        self.jaw = _slope(cfg.jaw_open_min, cfg.jaw_open_max)
        self.funnel = _slope(cfg.mouth_funnel_min, cfg.mouth_funnel_max)
        self.frown = _slope(cfg.mouth_frown_min, cfg.mouth_frown_max)
        self.smirk = _slope(cfg.smirk_min, cfg.smirk_max)
        self.delta = _slope(cfg.delta_upper_up_min, cfg.delta_upper_up_max)
        self.squint = _slope(cfg.unimpressed_squint_min, cfg.unimpressed_squint_max)
        self.iris_f = cfg.eye_rotation_factor / 2.0

    def __call__(self, b, head_deg) -> list[float]:
        # One long function on purpose: it runs per datagram, and a Python call per feature (as in
        # arkit_to_pose) costs about as much as that feature's arithmetic. The sections follow arkit_to_pose's.
        c = self.cfg
        o = [0.0] * NUM_PARAMETERS
        smile = (b[_SMILE_L] + b[_SMILE_R]) / 2.0 + b[_SHRUG_U]
        lo, k = self.smile
        d = (smile - lo) * k
        d = 0.0 if d <= 0.0 else 1.0 if d >= 1.0 else d
        nd = 1.0 - d
        s01 = 0.0 if smile <= 0.0 else 1.0 if smile >= 1.0 else smile

        # _brows
        biu = b[_BIU]
        x = biu + b[_BOU_L]
        o[_EYEBROW_RAISED_L] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        x = biu + b[_BOU_R]
        o[_EYEBROW_RAISED_R] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        if self.brow is not None:
            x = b[_BD_L] * self.brow
            o[self.brow_l] = nd * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
            x = b[_BD_R] * self.brow
            o[self.brow_r] = nd * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        o[_EYEBROW_HAPPY_L] = o[_EYEBROW_HAPPY_R] = s01 * d

        # _eyes
        if self.wide is not None:
            x = b[_WIDE_L] * self.wide
            o[_EYE_SURPRISED_L] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
            x = b[_WIDE_R] * self.wide
            o[_EYE_SURPRISED_R] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        kl = kr = 0.0
        if self.blink is not None:
            x = b[_BLINK_L] * self.blink
            kl = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
            x = b[_BLINK_R] * self.blink
            kr = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
            o[self.wink_l] = nd * kl
            o[self.wink_r] = nd * kr
            o[_EYE_HAPPY_WINK_L] = d * kl
            o[_EYE_HAPPY_WINK_R] = d * kr
        lo, k = self.cheek
        x = (b[_CHEEK_L] - lo) * k
        o[_EYE_LOWER_LID_L] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        x = (b[_CHEEK_R] - lo) * k
        o[_EYE_LOWER_LID_R] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x

        # _iris
        o[_IRIS_SMALL_L], o[_IRIS_SMALL_R] = c.iris_small_left, c.iris_small_right
        f = self.iris_f
        x = (b[_UP_L] + b[_UP_R] - b[_DN_L] - b[_DN_R]) * f
        o[_IRIS_X] = -1.0 if x <= -1.0 else 1.0 if x >= 1.0 else x
        x = (b[_IN_L] - b[_OUT_L] - b[_IN_R] + b[_OUT_R]) * f
        o[_IRIS_Y] = -1.0 if x <= -1.0 else 1.0 if x >= 1.0 else x

        # _head
        hx, hy, nz = head_params(head_deg[0], head_deg[1], head_deg[2], c)
        o[_HEAD_X], o[_HEAD_Y], o[_NECK_Z] = hx, hy, nz
        o[_BODY_Y], o[_BODY_Z] = hy * c.body_follow, nz * c.body_follow

        # _mouth
        lo, k = self.jaw
        mo = (b[_JAW] - lo) * k
        mo = 0.0 if mo <= 0.0 else 1.0 if mo >= 1.0 else mo
        o[_MOUTH_RAISED_L] = o[_MOUTH_RAISED_R] = s01
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
                o[_MOUTH_EEE] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
                aaa -= m
                iii -= m
            o[_MOUTH_AAA], o[_MOUTH_III] = aaa, iii
            o[_MOUTH_UUU] = uo * (1.0 - alpha)
            o[_MOUTH_OOO] = uo * alpha
        if official:
            return o

        # _fixes
        ns = 1.0 - s01
        lo, k = self.frown
        x = (b[_FROWN_L] - lo) * k
        o[_MOUTH_LOWERED_L] = ns * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        x = (b[_FROWN_R] - lo) * k
        o[_MOUTH_LOWERED_R] = ns * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        if mo > 0.0:
            lo, k = self.delta
            x = ((b[_UU_L] + b[_UU_R]) / 2.0 - lo) * k
            x = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
            o[_MOUTH_DELTA] = mo if mo < x else x
        lo, k = self.smirk
        x = (abs(b[_SMILE_L] - b[_SMILE_R]) - lo) * k
        o[_MOUTH_SMIRK] = 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x
        lo, k = self.squint
        x = (b[_SQ_L] - lo) * k
        o[_EYE_UNIMPRESSED_L] = (1.0 - kl) * nd * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        x = (b[_SQ_R] - lo) * k
        o[_EYE_UNIMPRESSED_R] = (1.0 - kr) * nd * (0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x)
        return o


__all__ = ["arkit_to_pose", "ArkitConverter"]

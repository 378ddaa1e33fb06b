"""VMC's fast path: a learned byte layout (osc_template.py) read as VMC targets and applied to a VmcState.

`build` keeps a layout only when every message is a plain VMC message whose meaning a layout can carry:
Blend/Val with a name and a float, Bone/Pos with seven floats, Apply, OK without floats (its ints are part of
the layout, so an unchanged OK changes nothing), T, Root/Pos and the ignored addresses. `/tha4/` messages,
unknown addresses and a bone sent twice in one datagram go through python-osc every time.
"""
from __future__ import annotations

import numpy as np

from .names import BONE_INDEX, classify_blend
from .osc_params import PREFIX as PARAM_PREFIX
from .osc_template import Layout
from .vmc_state import (BLEND_APPLY, BLEND_VAL, BONE_POS, EYE_LOOK, IGNORED, MAX_BLEND, MAX_QUAT_NORM,
                        MIN_QUAT_NORM, OK, ROOT_POS, TIME, VmcState)

_PASSIVE = IGNORED | {TIME, ROOT_POS}  # floats that may change without meaning anything to us


class VmcTemplate:
    __slots__ = ("layout", "ark_idx", "vrm_idx", "n_ark", "blend_words", "bone_idx", "bone_words", "has_apply",
                 "has_blend", "has_eye_look", "n_messages")


def build(layout: Layout) -> VmcTemplate | None:
    ark: list[tuple[int, int]] = []  # (ARKit index, word)
    vrm: list[tuple[int, int]] = []  # (VRM preset index, word)
    bones: dict[int, list[int]] = {}  # bone index -> the words of its rotation (x, y, z, w)
    has_apply = has_blend = False
    for m in layout.messages:
        addr = m.address
        if addr == BLEND_APPLY:
            has_apply = True
        elif addr.startswith(PARAM_PREFIX):
            return None  # overlay messages go through the general path
        elif addr == BLEND_VAL:
            if has_apply or m.tags[:3] != ",sf":
                return None  # a value after Apply belongs to the next frame: not worth a template
            kind, target = classify_blend(m.strings[0])
            if kind == "arkit":
                ark.append((target, m.float_words[0]))
            elif kind == "vrm":
                vrm.append((target, m.float_words[0]))
            has_blend = True
        elif addr == BONE_POS:
            if m.tags[:9] != ",sfffffff":
                return None
            b = BONE_INDEX.get(m.strings[0].lower())
            if b is not None:
                if b in bones or len(m.float_words) != 7:
                    return None  # the same bone twice in one datagram: not worth a template
                bones[b] = m.float_words[3:]  # position (3 floats) unused, then the rotation
        elif addr == OK:
            if "f" in m.tags:
                return None
        elif addr not in _PASSIVE:
            return None  # unknown addresses, ...: not templated
    t = VmcTemplate()
    t.layout = layout
    t.ark_idx = np.array([i for i, _ in ark], dtype=np.intp)
    t.vrm_idx = np.array([i for i, _ in vrm], dtype=np.intp)
    t.n_ark = len(ark)
    t.blend_words = np.array([w for _, w in ark + vrm], dtype=np.intp)
    t.bone_idx = list(bones)
    t.bone_words = np.array([w for words in bones.values() for w in words], dtype=np.intp)
    t.has_apply = has_apply
    t.has_blend = has_blend and len(t.blend_words) > 0  # only custom clips: nothing for us in them
    t.has_eye_look = any(i in EYE_LOOK for i, _ in ark)
    t.n_messages = len(layout.messages)
    return t


def apply(t: VmcTemplate, words: np.ndarray, st: VmcState) -> bool | None:
    """Changed-or-not for a datagram (`words`, big-endian uint32) that matches `t.layout`; None when a value is
    out of range, so that the general path counts the bad message."""
    changed = False
    if t.has_blend:
        bv = words[t.blend_words].view(">f4").astype(np.float64)  # has_blend: never empty
        if not np.abs(bv).max() <= MAX_BLEND:  # also catches NaN
            return None
        na = t.n_ark
        if t.has_apply and not st.pending_count:
            # The common frame: values and Apply in one bundle. Write straight into the committed frame.
            if na:
                st.arkit_arrives(t.has_eye_look)
                st.arkit[t.ark_idx] = bv[:na]
            if len(bv) > na:
                st.vrm[t.vrm_idx] = bv[na:]
            changed = True
        else:
            st.pending_arkit.update(zip(t.ark_idx.tolist(), bv[:na].tolist()))
            st.pending_vrm.update(zip(t.vrm_idx.tolist(), bv[na:].tolist()))
            st.pending_count += len(bv)
    if t.bone_idx:
        q = words[t.bone_words].view(">f4").astype(np.float64).reshape(-1, 4)
        norms = np.sqrt((q * q).sum(axis=1))
        if not (norms.min() >= MIN_QUAT_NORM and norms.max() <= MAX_QUAT_NORM):  # also catches NaN
            return None
        q /= norms[:, None]
        for i, row in zip(t.bone_idx, q.tolist()):
            st.bones[i] = tuple(row)
        st.bones_version += 1
        changed = True
    if t.has_apply:
        st.apply_seen = True
    if st.pending_count and (t.has_apply or not st.apply_seen):
        changed |= st.commit()
    return changed

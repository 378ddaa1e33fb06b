"""VMC protocol Marionette (facts §1): blendshapes, bones, liveness, over OSC/UDP.

State is kept across datagrams because a sender spreads one frame over several (bones in some bundles, the
blendshapes plus Apply in another). Blend/Val values accumulate and Blend/Apply commits them; a sender that
never sends Apply gets its values committed at the end of each datagram. Bones apply as they arrive.

Speed: python-osc takes ~0.2 ms for a 60-blendshape bundle, so a sender's bundles are parsed once by
python-osc and remembered as templates. A later datagram whose every non-float word equals the template's
(addresses, names, type tags, ints) only needs its floats gathered, one numpy fancy index.
"""
from __future__ import annotations

import math

import numpy as np
from pythonosc.parsing import osc_types

from .mapping import quat_mul, quat_to_unity_euler
from .names import ARKIT_INDEX, BONE_INDEX, BONES, VRM_PRESETS, classify_blend
from .osc import BUNDLE_PREFIX, number, parse_messages
from .osc_params import PREFIX as PARAM_PREFIX
from .osc_params import OscParamState
from .pipeline import SourcePipeline
from .udp import Malformed, UdpReceiver

DEFAULT_PORT = 39539
MAX_BLEND = 10.0  # blend values are 0..1; beyond this it is garbage
MAX_POSITION = 10000.0  # metres
MAX_PENDING = 1024  # Blend/Val without an Apply before we give up on the frame

_EYE_LOOK = {ARKIT_INDEX[n] for n in ARKIT_INDEX if n.startswith("eyeLook")}
_HEAD_CHAIN = tuple(BONE_INDEX[b.lower()] for b in ("Spine", "Chest", "UpperChest", "Neck", "Head"))
_LEFT_EYE, _RIGHT_EYE = BONE_INDEX["lefteye"], BONE_INDEX["righteye"]
_IGNORED = {"/VMC/Ext/Cam", "/VMC/Ext/Hmd/Pos", "/VMC/Ext/Con/Pos", "/VMC/Ext/Tra/Pos", "/VMC/Ext/Hmd/Pos/Local",
            "/VMC/Ext/Con/Pos/Local", "/VMC/Ext/Tra/Pos/Local", "/VMC/Ext/Con", "/VMC/Ext/Key", "/VMC/Ext/Midi/Note",
            "/VMC/Ext/Midi/CC/Val", "/VMC/Ext/Midi/CC/Bit", "/VMC/Ext/Light", "/VMC/Ext/Rcv", "/VMC/Ext/VRM",
            "/VMC/Ext/Remote", "/VMC/Ext/Opt", "/VMC/Ext/Setting/Color", "/VMC/Ext/Setting/Win", "/VMC/Ext/Config"}

# Template word kinds.
_K_ARKIT, _K_VRM, _K_BONE = 0, 1, 2


class VmcState:
    """Blendshapes (pending and committed) and bone rotations of one VMC sender."""

    def __init__(self):
        self.pending_arkit: dict[int, float] = {}
        self.pending_vrm: dict[int, float] = {}
        self.pending_count = 0
        self.arkit = np.zeros(52, dtype=np.float64)
        self.vrm = np.zeros(len(VRM_PRESETS), dtype=np.float32)
        self.perfect_sync = False  # an ARKit-named clip was ever committed
        self.eye_look = False  # an eyeLook* clip was ever committed
        self.bones: dict[int, tuple[float, float, float, float]] = {}
        self.bones_version = 0  # bumped whenever a bone we read changes
        self.apply_seen = False
        self.loaded = True
        self.tracking_ok = True
        self.sender_time: float | None = None
        self.blend_names_unknown = 0

    def commit(self) -> bool:
        if not self.pending_arkit and not self.pending_vrm:
            return False
        if self.pending_arkit:
            a = self.arkit
            for i, v in self.pending_arkit.items():
                a[i] = v
            self.perfect_sync = True
            if not self.eye_look and not _EYE_LOOK.isdisjoint(self.pending_arkit):
                self.eye_look = True
        for i, v in self.pending_vrm.items():
            self.vrm[i] = v
        self.pending_arkit, self.pending_vrm, self.pending_count = {}, {}, 0
        return True


class _Template:
    __slots__ = ("mask", "masked", "float_words", "ark_idx", "vrm_idx", "n_ark", "blend_words", "bone_words",
                 "bone_idx", "has_apply", "has_blend", "n_floats", "n_messages", "has_eye_look")


class VmcReceiver(UdpReceiver):
    name = "vmc"

    def __init__(self, host: str, port: int, pipeline: SourcePipeline, publish,
                 params: OscParamState | None = None, publish_overlay=None, max_datagram: int = 32768):
        super().__init__(host, port, max_datagram)
        self.pipeline, self.publish = pipeline, publish
        self.params, self.publish_overlay = params, publish_overlay
        self.state = VmcState()
        self._head_key = None
        self._head_cache = ((0.0, 0.0, 0.0), None)
        self.ignored = 0  # known VMC addresses we have no use for (Cam, Hmd, Midi, ...)
        self.messages = 0
        self._templates: dict[int, _Template | None] = {}  # by datagram length
        self._last: dict[int, bytes] = {}  # last datagram per length, to spot a frozen sender
        self._has_time: dict[int, bool] = {}  # whether datagrams of this length carry /VMC/Ext/T

    # -- datagram entry ------------------------------------------------------------------------------------
    def handle(self, data: bytes, addr, t: float) -> None:
        n = len(data)
        frozen = self._last.get(n) == data and self._has_time.get(n)
        tpl = self._templates.get(n)
        changed = self._fast(data, tpl) if tpl is not None else None
        if changed is None:
            changed = self._slow(data)  # raises Malformed for a datagram that is unusable as a whole
        if frozen:
            self.repeats += 1  # the sender clock (/VMC/Ext/T) did not move: a frozen sender, not fresh data
        else:
            self.last_fresh = t
        if len(self._last) < 64 or n in self._last:
            self._last[n] = data
        if changed:
            self.accepted += 1
            self._publish(t)

    def _fast(self, data: bytes, tpl: _Template) -> bool | None:
        """Changed-or-not if the datagram matches its template, None to take the general path."""
        words = np.frombuffer(data, dtype=">u4")
        if (words & tpl.mask).tobytes() != tpl.masked:
            del self._templates[len(data)]  # the layout changed: relearn from this datagram
            return None
        st = self.state
        changed = False
        if tpl.has_blend:
            bv = words[tpl.blend_words].view(">f4").astype(np.float64)  # has_blend: never empty
            if not np.abs(bv).max() <= MAX_BLEND:  # also catches NaN
                return None  # let the general path count the bad message
            na = tpl.n_ark
            if tpl.has_apply and not st.pending_count:
                # The common frame: values and Apply in one bundle. Write straight into the committed frame.
                if na:
                    st.arkit[tpl.ark_idx] = bv[:na]
                    st.perfect_sync = True
                    st.eye_look |= tpl.has_eye_look
                if len(bv) > na:
                    st.vrm[tpl.vrm_idx] = bv[na:]
                changed = True
            else:
                st.pending_arkit.update(zip(tpl.ark_idx.tolist(), bv[:na].tolist()))
                st.pending_vrm.update(zip(tpl.vrm_idx.tolist(), bv[na:].tolist()))
                st.pending_count += len(bv)
        if tpl.bone_idx:
            q = words[tpl.bone_words].view(">f4").astype(np.float64).reshape(-1, 4)
            norms = np.sqrt((q * q).sum(axis=1))
            if not (norms.min() >= 0.5 and norms.max() <= 2.0):  # also catches NaN
                return None
            q /= norms[:, None]
            for i, row in zip(tpl.bone_idx, q.tolist()):
                st.bones[i] = tuple(row)
            st.bones_version += 1
            changed = True
        if tpl.has_apply:
            st.apply_seen = True
        if st.pending_count and (tpl.has_apply or not st.apply_seen):
            changed |= st.commit()
        self.messages += tpl.n_messages
        return changed

    def _slow(self, data: bytes) -> bool:
        msgs = parse_messages(data)
        st = self.state
        changed = False
        overlay = None
        for m in msgs:
            self.messages += 1
            addr = m.address
            try:
                if addr.startswith(PARAM_PREFIX) and self.params is not None:
                    if overlay is None:
                        overlay = (self.params.values.copy(), self.params.mask.copy())
                    self.params.handle(addr, m.params, *overlay)
                    continue
                changed |= self._message(addr, m.params)
            except Malformed as e:
                self._count(e.args[0])
        if st.pending_count and not st.apply_seen:
            changed |= st.commit()  # a sender that never sends Apply
        if overlay is not None and self.publish_overlay is not None:
            self.params.values, self.params.mask = overlay
            self.publish_overlay(overlay[0], overlay[1], None)
        if len(self._has_time) > 4096:
            self._has_time.clear()
        self._has_time[len(data)] = any(m.address == "/VMC/Ext/T" for m in msgs)
        self._learn(data, msgs)
        return changed

    def _message(self, addr: str, p: list) -> bool:
        st = self.state
        if addr == "/VMC/Ext/Blend/Val":
            if len(p) < 2:
                raise Malformed("too_few_args")
            name, v = p[0], number(p[1])
            if not isinstance(name, str):
                raise Malformed("wrong_type")
            if not math.isfinite(v):
                raise Malformed("non_finite")
            if abs(v) > MAX_BLEND:
                raise Malformed("absurd_value")
            kind, i = classify_blend(name)
            if kind == "arkit":
                st.pending_arkit[i] = v
            elif kind == "vrm":
                st.pending_vrm[i] = v
            else:
                st.blend_names_unknown += 1
                return False
            st.pending_count += 1
            if st.pending_count > MAX_PENDING:
                st.pending_arkit, st.pending_vrm, st.pending_count = {}, {}, 0
                raise Malformed("too_many_blends")
            return False
        if addr == "/VMC/Ext/Blend/Apply":
            st.apply_seen = True
            return st.commit()
        if addr == "/VMC/Ext/Bone/Pos" or addr == "/VMC/Ext/Root/Pos":
            if len(p) < 8:
                raise Malformed("too_few_args")
            name = p[0]
            if not isinstance(name, str):
                raise Malformed("wrong_type")
            v = [number(x) for x in p[1:8]]
            if not all(math.isfinite(x) for x in v):
                raise Malformed("non_finite")
            if max(abs(x) for x in v[:3]) > MAX_POSITION:
                raise Malformed("absurd_value")
            qx, qy, qz, qw = v[3:]
            norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
            if not 0.5 <= norm <= 2.0:
                raise Malformed("absurd_value")
            if addr == "/VMC/Ext/Root/Pos":
                return False  # the model's world placement: nothing to draw from it in 2D
            i = BONE_INDEX.get(name.lower())
            if i is None:
                return False
            st.bones[i] = (qx / norm, qy / norm, qz / norm, qw / norm)
            st.bones_version += 1
            return True
        if addr == "/VMC/Ext/OK":
            if len(p) < 1:
                raise Malformed("too_few_args")
            st.loaded = number(p[0]) != 0
            st.tracking_ok = (number(p[3]) != 0) if len(p) >= 4 else True
            return False
        if addr == "/VMC/Ext/T":
            if len(p) < 1:
                raise Malformed("too_few_args")
            st.sender_time = number(p[0])
            return False
        if addr in _IGNORED or addr.startswith("/VMC/Thru/"):
            self.ignored += 1
            return False
        raise Malformed("unknown_address")

    # -- the pose ------------------------------------------------------------------------------------------
    def _publish(self, t: float) -> None:
        st = self.state
        if not st.tracking_ok:
            return  # the sender says its tracking is bad: let the hub hold and ease to idle
        key = (st.bones_version, st.eye_look)
        if key != self._head_key:  # bones change less often than faces: compose them only when they moved
            self._head_key = key
            self._head_cache = self._head_and_iris()
        head_deg, iris = self._head_cache
        if st.perfect_sync:
            pose = self.pipeline.from_arkit(st.arkit.tolist(), head_deg, t, iris)
        else:
            pose = self.pipeline.from_vrm(st.vrm, head_deg, t, iris)
        self.publish(self.name, pose, t, self.last_fresh)

    def _head_and_iris(self):
        st = self.state
        bones = st.bones
        q = (0.0, 0.0, 0.0, 1.0)
        for i in _HEAD_CHAIN:
            b = bones.get(i)
            if b is not None:
                q = quat_mul(q, b)
        pitch, yaw, roll = quat_to_unity_euler(*q)
        head_deg = (pitch, -yaw, -roll)  # iFacialMocap convention (facts §1.4)
        iris = None
        if not st.eye_look:
            eyes = [bones[i] for i in (_LEFT_EYE, _RIGHT_EYE) if i in bones]
            if eyes:
                angles = [quat_to_unity_euler(*e) for e in eyes]
                iris = self.pipeline.iris_from_eye_bones(sum(a[0] for a in angles) / len(angles),
                                                         sum(a[1] for a in angles) / len(angles))
        return head_deg, iris

    # -- templates -----------------------------------------------------------------------------------------
    def _learn(self, data: bytes, msgs) -> None:
        """Remember this datagram's layout if every message is a plain VMC message we understand."""
        n = len(data)
        if n in self._templates:
            return
        if len(self._templates) >= 64:  # e.g. after a burst of garbage: start over rather than stop learning
            self._templates.clear()
        self._templates[n] = None  # one attempt per length
        try:
            tpl = _build_template(data, self.state)
        except Exception:
            return
        self._templates[n] = tpl


def _elements(data: bytes):
    """(offset, bytes) of each message in a flat bundle or a single message; None if nested."""
    if data[:8] != BUNDLE_PREFIX:
        return [(0, data)]
    out, i = [], 16
    while i < len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        i += 4
        elem = data[i:i + size]
        if elem[:8] == BUNDLE_PREFIX:
            return None
        out.append((i, elem))
        i += size
    return out


def _build_template(data: bytes, state: VmcState) -> _Template | None:
    elems = _elements(data)
    if elems is None:
        return None
    nwords = len(data) // 4
    mask = np.full(nwords, 0xFFFFFFFF, dtype=np.uint32)
    if data[:8] == BUNDLE_PREFIX:
        mask[2:4] = 0  # the timetag may change every frame
    float_words: list[int] = []
    kinds: list[tuple[int, int, int]] = []  # (kind, target, position in float_words)
    has_apply = has_blend = False
    for off, elem in elems:
        addr, i = osc_types.get_string(elem, 0)
        if len(elem) == i:
            tags = ","
        else:
            tags, i = osc_types.get_string(elem, i)
        if not tags.startswith(","):
            return None
        if addr == "/VMC/Ext/Blend/Apply":
            has_apply = True
            continue
        if addr.startswith(PARAM_PREFIX):
            return None  # overlay messages go through the general path
        if addr == "/VMC/Ext/Blend/Val":
            if has_apply or tags[:3] != ",sf":
                return None
        elif addr == "/VMC/Ext/Bone/Pos":
            if tags[:9] != ",sfffffff":
                return None
        elif addr == "/VMC/Ext/OK":
            if "f" in tags:
                return None  # its ints are part of the template, so an unchanged OK changes nothing
        elif addr not in ("/VMC/Ext/T", "/VMC/Ext/Root/Pos") and addr not in _IGNORED:
            return None  # unknown addresses, ...: not templated
        name = None
        for tag in tags[1:]:
            if tag == "s":
                name, i = osc_types.get_string(elem, i)
            elif tag == "f":
                w = (off + i) // 4
                pos = len(float_words)
                float_words.append(w)
                mask[w] = 0
                if addr == "/VMC/Ext/Blend/Val":
                    kind, target = classify_blend(name)
                    if kind == "arkit":
                        kinds.append((_K_ARKIT, target, pos))
                    elif kind == "vrm":
                        kinds.append((_K_VRM, target, pos))
                    has_blend = True
                elif addr == "/VMC/Ext/Bone/Pos":
                    b = BONE_INDEX.get(name.lower())
                    if b is not None:
                        kinds.append((_K_BONE, b, pos))
                i += 4
            elif tag == "i":
                i += 4
            else:
                return None
    t = _Template()
    t.mask = mask.astype(">u4")
    t.masked = (np.frombuffer(data, dtype=">u4") & t.mask).tobytes()
    t.float_words = np.array(float_words, dtype=np.intp)
    t.n_floats = len(float_words)
    t.n_messages = len(elems)
    ark = [(tg, pos) for k, tg, pos in kinds if k == _K_ARKIT]
    vrm = [(tg, pos) for k, tg, pos in kinds if k == _K_VRM]
    t.ark_idx = np.array([tg for tg, _ in ark], dtype=np.intp)
    t.vrm_idx = np.array([tg for tg, _ in vrm], dtype=np.intp)
    t.n_ark = len(ark)
    t.blend_words = np.array([float_words[pos] for _, pos in ark + vrm], dtype=np.intp)
    # Bones: each Bone/Pos has 7 floats, the rotation is the last 4.
    bone_idx, bone_pos = [], []
    by_bone: dict[int, list[int]] = {}
    for k, tg, pos in kinds:
        if k == _K_BONE:
            by_bone.setdefault(tg, []).append(pos)
    for b, positions in by_bone.items():
        if len(positions) != 7:
            return None  # the same bone twice in one datagram: not worth a template
        bone_idx.append(b)
        bone_pos.extend(positions[3:])
    t.bone_idx = bone_idx
    t.bone_words = np.array([float_words[pos] for pos in bone_pos], dtype=np.intp)
    t.has_apply = has_apply
    t.has_blend = has_blend and len(t.blend_words) > 0  # only custom clips: nothing for us in them
    t.has_eye_look = any(int(tg) in _EYE_LOOK for tg in t.ark_idx)
    return t


__all__ = ["VmcReceiver", "VmcState", "DEFAULT_PORT", "BONES"]

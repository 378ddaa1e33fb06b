"""What VMC messages mean to a Marionette (protocols/trackers.md, "VMC"): one sender's blendshapes and bones.

State is kept across datagrams because a sender spreads one frame over several (bones in some bundles, the
blendshapes plus Apply in another). Blend/Val values accumulate and Blend/Apply commits them; a sender that
never sends Apply gets its values committed at the end of each datagram (the receiver does that). Bones apply
as they arrive. `apply_message` is the meaning of one parsed message; vmc_template.py is the same meaning for
a datagram read through a learned byte layout, and a property test keeps the two equal.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .names import ARKIT_INDEX, BONE_INDEX, VRM_PRESETS, classify_blend
from .osc import number
from .udp import Malformed

BLEND_VAL, BLEND_APPLY = "/VMC/Ext/Blend/Val", "/VMC/Ext/Blend/Apply"
BONE_POS, ROOT_POS = "/VMC/Ext/Bone/Pos", "/VMC/Ext/Root/Pos"
OK, TIME = "/VMC/Ext/OK", "/VMC/Ext/T"
# Known addresses with nothing in them for a 2D face: counted as ignored, not as malformed.
IGNORED = frozenset({
    "/VMC/Ext/Cam", "/VMC/Ext/Hmd/Pos", "/VMC/Ext/Con/Pos", "/VMC/Ext/Tra/Pos", "/VMC/Ext/Hmd/Pos/Local",
    "/VMC/Ext/Con/Pos/Local", "/VMC/Ext/Tra/Pos/Local", "/VMC/Ext/Con", "/VMC/Ext/Key", "/VMC/Ext/Midi/Note",
    "/VMC/Ext/Midi/CC/Val", "/VMC/Ext/Midi/CC/Bit", "/VMC/Ext/Light", "/VMC/Ext/Rcv", "/VMC/Ext/VRM",
    "/VMC/Ext/Remote", "/VMC/Ext/Opt", "/VMC/Ext/Setting/Color", "/VMC/Ext/Setting/Win", "/VMC/Ext/Config"})
THRU_PREFIX = "/VMC/Thru/"  # vendor pass-through, ignored

MAX_BLEND = 10.0  # blend values are 0..1; beyond this it is garbage
MAX_POSITION = 10000.0  # metres
MAX_PENDING = 1024  # Blend/Val without an Apply before we give up on the frame
MIN_QUAT_NORM, MAX_QUAT_NORM = 0.5, 2.0  # a rotation further from unit length than this is garbage

EYE_LOOK = frozenset(i for n, i in ARKIT_INDEX.items() if n.startswith("eyeLook"))
# A sender is perfect-sync while ARKit names keep coming; this long without them (a switch to a tracker that
# sends only VRM presets on the same port) and its VRM presets drive the face again, as do the eye bones.
PERFECT_SYNC_FALLBACK = 3.0  # seconds


class VmcState:
    """Blendshapes (pending and committed) and bone rotations of one VMC sender."""

    def __init__(self):
        self.pending_arkit: dict[int, float] = {}
        self.pending_vrm: dict[int, float] = {}
        self.pending_count = 0
        self.arkit = np.zeros(len(ARKIT_INDEX), dtype=np.float64)
        self.vrm = np.zeros(len(VRM_PRESETS), dtype=np.float32)
        self.arkit_at: float | None = None  # time.monotonic() of the last committed ARKit-named clip
        self.eye_look_at: float | None = None  # ... and of the last eyeLook* clip
        self.bones: dict[int, tuple[float, float, float, float]] = {}
        self.bones_version = 0  # bumped whenever a bone we read changes
        self.apply_seen = False
        self.loaded = True
        self.tracking_ok = True
        self.sender_time: float | None = None
        self.blend_names_unknown = 0
        self.ignored = 0  # known VMC addresses we have no use for (Cam, Hmd, Midi, ...)

    @property
    def perfect_sync(self) -> bool:
        """ARKit names arrived lately (within PERFECT_SYNC_FALLBACK)."""
        return self.arkit_at is not None and time.monotonic() - self.arkit_at < PERFECT_SYNC_FALLBACK

    @property
    def eye_look(self) -> bool:
        """eyeLook* clips arrived lately: they, not the eye bones, move the iris."""
        return self.eye_look_at is not None and time.monotonic() - self.eye_look_at < PERFECT_SYNC_FALLBACK

    def arkit_arrives(self, has_eye_look: bool) -> None:
        """Before ARKit values are written: after a lapse, start from zeros (not the last sender's face)."""
        if not self.perfect_sync:
            self.arkit[:] = 0.0
        self.arkit_at = now = time.monotonic()
        if has_eye_look:
            self.eye_look_at = now

    def commit(self) -> bool:
        if not self.pending_arkit and not self.pending_vrm:
            return False
        if self.pending_arkit:
            self.arkit_arrives(not EYE_LOOK.isdisjoint(self.pending_arkit))
            a = self.arkit
            for i, v in self.pending_arkit.items():
                a[i] = v
        for i, v in self.pending_vrm.items():
            self.vrm[i] = v
        self.pending_arkit, self.pending_vrm, self.pending_count = {}, {}, 0
        return True


def apply_message(st: VmcState, addr: str, p: list) -> bool:
    """Apply one VMC message; True if the committed face or a bone changed. Raises Malformed (message skipped)."""
    handler = _HANDLERS.get(addr)
    if handler is not None:
        return handler(st, p)
    if addr in IGNORED or addr.startswith(THRU_PREFIX):
        st.ignored += 1
        return False
    raise Malformed("unknown_address")


def _blend_val(st: VmcState, p: list) -> bool:
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


def _blend_apply(st: VmcState, p: list) -> bool:
    st.apply_seen = True
    return st.commit()


def _pose(p: list) -> tuple[str, float, float, float, float, float]:
    """A checked Bone/Pos or Root/Pos: (name, qx, qy, qz, qw, norm); the position is checked and dropped."""
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
    if not MIN_QUAT_NORM <= norm <= MAX_QUAT_NORM:
        raise Malformed("absurd_value")
    return name, qx, qy, qz, qw, norm


def _bone_pos(st: VmcState, p: list) -> bool:
    name, qx, qy, qz, qw, norm = _pose(p)
    i = BONE_INDEX.get(name.lower())
    if i is None:
        return False
    st.bones[i] = (qx / norm, qy / norm, qz / norm, qw / norm)
    st.bones_version += 1
    return True


def _root_pos(st: VmcState, p: list) -> bool:
    _pose(p)  # checked like a bone, then unused: the model's world placement means nothing in 2D
    return False


def _ok(st: VmcState, p: list) -> bool:
    if len(p) < 1:
        raise Malformed("too_few_args")
    st.loaded = number(p[0]) != 0
    st.tracking_ok = (number(p[3]) != 0) if len(p) >= 4 else True
    return False


def _time(st: VmcState, p: list) -> bool:
    if len(p) < 1:
        raise Malformed("too_few_args")
    st.sender_time = number(p[0])
    return False


_HANDLERS = {BLEND_VAL: _blend_val, BLEND_APPLY: _blend_apply, BONE_POS: _bone_pos, ROOT_POS: _root_pos,
             OK: _ok, TIME: _time}

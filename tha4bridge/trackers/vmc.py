"""The VMC receiver (a Marionette, protocols/trackers.md "VMC"): datagrams in, one pose per change out.

A datagram takes one of two paths that mean the same (a property test keeps them equal):
- the general path: python-osc (osc.py), then `vmc_state.apply_message` per message; the datagram's byte
  layout is learned afterwards (osc_template.py, read as VMC targets by vmc_template.py);
- the template path: a later datagram of the same length whose constant words match the learned layout has
  only its floats read, one numpy gather instead of python-osc's ~0.2 ms for a 60-blendshape bundle.
`/tha4/` messages on the VMC socket go to the parameter overlay (osc_params.py), a datagram's worth at once.
"""
from __future__ import annotations

import numpy as np

from . import vmc_template
from .names import BONE_INDEX, BONES, face_warnings
from .osc import parse_messages
from .osc_params import PREFIX as PARAM_PREFIX
from .osc_params import OscParamState
from .osc_template import learn
from .pipeline import SourcePipeline
from .rotation import chain, quat_to_unity_euler, unity_to_ifm
from .udp import Malformed, UdpReceiver
from .vmc_state import TIME, VmcState, apply_message

# The head relative to the hips: every bone of the chain the sender has, parents first (protocols/trackers.md,
# "Rotations": performers spread the head's turn over neck and head, sometimes the spine).
_HEAD_CHAIN = tuple(BONE_INDEX[b.lower()] for b in ("Spine", "Chest", "UpperChest", "Neck", "Head"))
_EYES = (BONE_INDEX["lefteye"], BONE_INDEX["righteye"])
# Per datagram length we keep a template and the last datagram; past this many lengths (a burst of garbage)
# templates start over rather than stop being learned.
MAX_LENGTHS = 64
MAX_TIME_LENGTHS = 4096  # lengths whose /VMC/Ext/T presence is remembered


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
        self.messages = 0
        self._templates: dict[int, vmc_template.VmcTemplate | None] = {}  # by datagram length
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
        if len(self._last) < MAX_LENGTHS or n in self._last:
            self._last[n] = data
        if changed:
            self.accepted += 1
            self._publish(t)

    def _fast(self, data: bytes, tpl: vmc_template.VmcTemplate) -> bool | None:
        """Changed-or-not if the datagram matches its template, None to take the general path."""
        words = np.frombuffer(data, dtype=">u4")
        if not tpl.layout.matches(words):
            del self._templates[len(data)]  # the layout changed: relearn from this datagram
            return None
        changed = vmc_template.apply(tpl, words, self.state)
        if changed is not None:
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
                changed |= apply_message(st, addr, m.params)
            except Malformed as e:
                self._count(e.args[0])
        if st.pending_count and not st.apply_seen:
            changed |= st.commit()  # a sender that never sends Apply
        if overlay is not None and self.publish_overlay is not None:
            self.params.values, self.params.mask = overlay
            self.publish_overlay(overlay[0], overlay[1], None)
        if len(self._has_time) > MAX_TIME_LENGTHS:
            self._has_time.clear()
        self._has_time[len(data)] = any(m.address == TIME for m in msgs)
        self._learn(data)
        return changed

    def _learn(self, data: bytes) -> None:
        """Remember this datagram's layout if every message is a plain VMC message we understand."""
        n = len(data)
        if n in self._templates:
            return
        if len(self._templates) >= MAX_LENGTHS:
            self._templates.clear()
        self._templates[n] = None  # one attempt per length
        layout = learn(data)
        if layout is not None:
            self._templates[n] = vmc_template.build(layout)

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
        """Head angles in iFacialMocap degrees; the iris from the eye bones unless eyeLook* clips arrive."""
        bones = self.state.bones
        head_deg = unity_to_ifm(*quat_to_unity_euler(*chain([bones[i] for i in _HEAD_CHAIN if i in bones])))
        iris = None
        if not self.state.eye_look:
            angles = [quat_to_unity_euler(*bones[i]) for i in _EYES if i in bones]
            if angles:
                iris = self.pipeline.iris_from_eye_bones(sum(a[0] for a in angles) / len(angles),
                                                         sum(a[1] for a in angles) / len(angles))
        return head_deg, iris

    def stats(self) -> dict:
        st = self.state
        s = super().stats()
        s.update(ignored=st.ignored, messages=self.messages, tracking_ok=st.tracking_ok,
                 perfect_sync=st.perfect_sync,
                 # list() copies in one C call, safe while the receiver thread adds lengths
                 templates=sum(t is not None for t in list(self._templates.values())),
                 warnings=face_warnings(st.arkit) if st.perfect_sync else [])
        return s


__all__ = ["VmcReceiver", "VmcState", "BONES"]

"""The VMC receiver (a Marionette, protocols/trackers.md "VMC"): datagrams in, one pose per change out.

A datagram is handed on once from stage to stage, in this order: the socket (udp.py); here; its learned byte
layout (osc_template.py: the words that may change are floats, the rest must match) or, the first time and
whenever the layout does not match, python-osc behind our framing walk (osc.py), the `/tha4/` messages to the
parameter overlay (osc_params.py) and the layout learned (osc_template.py); the VMC rules (vmc_state.py: the
plan compiled from the messages, or kept with the layout, run on the datagram's numbers); the head from the
bones (rotation.py); the mapping (pipeline.py); the hub. The layout path skips python-osc's ~0.2 ms for a
60-blendshape bundle and compiling the plan.
"""
from __future__ import annotations

import numpy as np

from .names import BONE_INDEX, BONES, face_warnings
from .osc import OscError, parse
from .osc_params import PREFIX as PARAM_PREFIX
from .osc_params import OscParamState
from .osc_template import learn
from .pipeline import SourcePipeline
from .rotation import chain, quat_to_unity_euler, unity_to_ifm
from .udp import MAX_DATAGRAM, Malformed, UdpReceiver
from .vmc_state import Plan, VmcState, compile_plan

# The head relative to the hips: every bone of the chain the sender has, parents first (protocols/trackers.md,
# "Rotations": performers spread the head's turn over neck and head, sometimes the spine).
_HEAD_CHAIN = tuple(BONE_INDEX[b.lower()] for b in ("Spine", "Chest", "UpperChest", "Neck", "Head"))
_EYES = (BONE_INDEX["lefteye"], BONE_INDEX["righteye"])
# Per datagram length we keep a layout's plan and the last datagram; past this many lengths (a burst of
# garbage) plans start over rather than stop being learned.
MAX_LENGTHS = 64


class VmcReceiver(UdpReceiver):
    name = "vmc"

    def __init__(self, host: str, port: int, pipeline: SourcePipeline, publish,
                 params: OscParamState | None = None, publish_overlay=None, max_datagram: int = MAX_DATAGRAM):
        super().__init__(host, port, max_datagram)
        self.pipeline, self.publish = pipeline, publish
        self.params, self.publish_overlay = params, publish_overlay
        self.state = VmcState()
        self._head_key = None
        self._head_cache = ((0.0, 0.0, 0.0), None)
        self.messages = 0
        self._plans: dict[int, Plan | None] = {}  # by datagram length: a plan bound to its layout, or None
        self._last: dict[int, bytes] = {}  # last datagram per length, to spot a frozen sender

    # -- datagram entry ------------------------------------------------------------------------------------
    def handle(self, data: bytes, addr, t: float) -> None:
        n = len(data)
        plan = self._plans.get(n)
        values = None
        if plan is not None:
            words = np.frombuffer(data, dtype=">u4")
            if plan.layout.matches(words):
                values = plan.read(words)
                self.messages += plan.n_messages
            else:
                del self._plans[n]  # the layout changed: relearn from this datagram
        if values is None:
            plan, values = self._general(data)  # raises Malformed for a datagram that is unusable as a whole
        changed = plan.run(values, self.state, self._count)
        if self._last.get(n) == data and plan.has_time:
            self.repeats += 1  # the sender clock (/VMC/Ext/T) did not move: a frozen sender, not fresh data
        else:
            self.last_fresh = t
        if len(self._last) < MAX_LENGTHS or n in self._last:
            self._last[n] = data
        if changed:
            self.accepted += 1
            st = self.state
            if st.tracking_ok:  # else the sender says its tracking is bad: let the hub hold and ease to idle
                self._publish(t, st.eye_look, st.perfect_sync)

    def _general(self, data: bytes) -> tuple[Plan, np.ndarray]:
        """python-osc's parse; the `/tha4/` messages applied to the overlay; the VMC messages' plan, kept with
        the datagram's layout when it has no overlay messages (those take this path every time)."""
        try:
            framing, msgs = parse(data)
        except OscError as e:
            raise Malformed(e.args[0]) from None
        self.messages += len(msgs)
        overlay: list = []
        if self.params is not None:  # else a /tha4/ address is unknown to VMC, and counted so
            vmc_msgs: list = []
            for m in msgs:
                (overlay if m.address.startswith(PARAM_PREFIX) else vmc_msgs).append(m)
            if overlay:
                msgs = vmc_msgs
                self.params.apply(overlay, self._count)
                if self.publish_overlay is not None:
                    self.publish_overlay(self.params.values, self.params.mask, None)
        n = len(data)
        layout = None
        if n not in self._plans:  # one attempt per length
            if len(self._plans) >= MAX_LENGTHS:
                self._plans.clear()
            self._plans[n] = None
            if not overlay:
                layout = learn(data, framing)
        plan, values = compile_plan(msgs)
        if layout is not None:
            self._plans[n] = plan.bind(layout, values)
        return plan, values

    # -- the pose ------------------------------------------------------------------------------------------
    def _publish(self, t: float, eye_look: bool, perfect_sync: bool) -> None:
        st = self.state
        key = (st.bones_version, eye_look)
        if key != self._head_key:  # bones change less often than faces: compose them only when they moved
            self._head_key = key
            self._head_cache = self._head_and_iris(eye_look)
        head_deg, iris = self._head_cache
        if perfect_sync:
            pose = self.pipeline.from_arkit(st.arkit.tolist(), head_deg, t, iris)
        else:
            pose = self.pipeline.from_vrm(st.vrm, head_deg, t, iris)
        self.publish(self.name, pose, t, self.last_fresh)

    def _head_and_iris(self, eye_look: bool):
        """Head angles in iFacialMocap degrees; the iris from the eye bones unless eyeLook* clips arrive."""
        bones = self.state.bones
        head_deg = unity_to_ifm(*quat_to_unity_euler(*chain([bones[i] for i in _HEAD_CHAIN if i in bones])))
        iris = None
        if not eye_look:
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
                 templates=sum(p is not None for p in list(self._plans.values())),
                 warnings=face_warnings(st.arkit) if st.perfect_sync else [])
        return s


__all__ = ["VmcReceiver", "VmcState", "BONES"]

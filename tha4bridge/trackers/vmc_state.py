"""What VMC messages mean to a Marionette (protocols/trackers.md, "VMC"): one sender's blendshapes and bones.

State is kept across datagrams because a sender spreads one frame over several (bones in some bundles, the
blendshapes plus Apply in another). Blend/Val values accumulate and Blend/Apply commits them; a sender that
never sends Apply gets its values committed at the end of each datagram. Bones apply as they arrive.

Every rule is written once, in two halves. `compile_plan` reads what a sender keeps the same while it repeats a
layout (addresses, names, argument types, ints) into a `Plan`: which message sets what, and which messages are
dropped for a missing argument or one of the wrong type. `Plan.run` applies the numbers: finite, in range,
pending until Apply, bones normalised. The general path compiles every datagram python-osc parsed; the
byte-layout cache (vmc.py) keeps a datagram's plan bound to the word of each of its numbers (`Plan.bind`), so
a later datagram of the same layout skips python-osc and `compile_plan` and runs the same plan on its floats.
"""
from __future__ import annotations

import itertools
import time

import numpy as np

from .names import ARKIT_INDEX, BONE_INDEX, VRM_PRESETS, classify_blend
from .osc import OscError, number
from .osc_template import Layout

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

    def commit(self) -> bool:
        """Blend/Apply: the pending values become the face. True if there were any."""
        ark, vrm = self.pending_arkit, self.pending_vrm
        if not ark and not vrm:
            return False
        self.pending_arkit, self.pending_vrm, self.pending_count = {}, {}, 0
        self.write(list(ark), list(ark.values()), not EYE_LOOK.isdisjoint(ark), list(vrm), list(vrm.values()))
        return True

    def write(self, ark_idx, ark_values, eye_look: bool, vrm_idx, vrm_values) -> None:
        """Committed values into the face (indices unique: a list, an array or a slice). Before ARKit values
        after a lapse: start from zeros, not the last sender's face."""
        if len(ark_values):
            now = time.monotonic()
            if self.arkit_at is None or now - self.arkit_at >= PERFECT_SYNC_FALLBACK:  # not perfect_sync
                self.arkit[:] = 0.0
            self.arkit_at = now
            if eye_look:
                self.eye_look_at = now
            self.arkit[ark_idx] = ark_values
        if len(vrm_values):
            self.vrm[vrm_idx] = vrm_values


# -- the layout half: compile ----------------------------------------------------------------------------------
class _Blends:
    """A run of Blend/Val messages up to an Apply (`commit`) or the end of the datagram."""

    __slots__ = ("lo", "hi", "whole", "commit", "ark_pos", "ark_idx", "vrm_pos", "vrm_idx", "ark_take", "vrm_take",
                 "ark_put", "vrm_put", "n_known", "n_unknown", "eye_look", "unique")

    def __init__(self, lo: int, targets: list[tuple[str, int]], commit: bool):
        self.lo, self.hi, self.commit = lo, lo + len(targets), commit  # the values' slots
        self.whole = False  # the values are all the datagram's numbers (set by compile_plan): no slice needed
        ark = [(k, i) for k, (kind, i) in enumerate(targets) if kind == "arkit"]
        vrm = [(k, i) for k, (kind, i) in enumerate(targets) if kind == "vrm"]
        self.ark_pos = np.array([k for k, _ in ark], dtype=np.intp)  # where in the run
        self.ark_idx = np.array([i for _, i in ark], dtype=np.intp)  # which ARKit value
        self.vrm_pos = np.array([k for k, _ in vrm], dtype=np.intp)
        self.vrm_idx = np.array([i for _, i in vrm], dtype=np.intp)
        # The same as slices where they are runs (a sender lists its clips together, often in ARKit's order):
        # a view instead of a gather, a block copy instead of a scatter.
        self.ark_take, self.vrm_take = _slice(self.ark_pos), _slice(self.vrm_pos)
        self.ark_put, self.vrm_put = _slice(self.ark_idx), _slice(self.vrm_idx)
        self.n_known = len(ark) + len(vrm)
        self.n_unknown = len(targets) - self.n_known  # other clip names: checked, counted, unused
        self.eye_look = not EYE_LOOK.isdisjoint(i for _, i in ark)
        # One value per target: the frame may be written straight into the face (numpy's fancy assignment
        # does not promise which of two values for one index wins; the pending dicts keep the last).
        self.unique = len({i for _, i in ark}) == len(ark) and len({i for _, i in vrm}) == len(vrm)


def _slice(positions: np.ndarray):
    """`positions` as a slice when they are an ascending run, else themselves."""
    if len(positions) and np.array_equal(positions, np.arange(positions[0], positions[0] + len(positions))):
        return slice(int(positions[0]), int(positions[0]) + len(positions))
    return positions


class Plan:
    """What one datagram layout means; `run` applies a datagram's numbers (`values`, one float per slot)."""

    def __init__(self):
        self.n_messages = 0
        self.errors: list[str] = []  # messages dropped for their layout (missing, wrong-typed arguments...)
        self.ignored = 0
        self.has_time = False  # carries the sender clock (/VMC/Ext/T): a byte-identical repeat means frozen
        self.blends: list[_Blends] = []
        # Slots of Bone/Pos and Root/Pos arguments: every position (3 per message), then every rotation (4 per
        # message), so that the rotations are one contiguous block.
        self.bones_lo = self.bones_mid = self.bones_hi = 0
        self.bone_idx: list[int] = []  # per such message: the bone we read, or -1 (checked, then unused)
        self.oks: list[tuple[int, int | bool | None]] = []  # OK: (loaded slot, tracking slot | True | None)
        self.time_slot: int | None = None
        self.sources: list[tuple[int, int]] = []  # per slot: (message, argument) it was read from
        self.layout: Layout | None = None  # set by bind: the cached form
        self._words = self._var = self._const = None
        self._rest = False  # any drops, ignored addresses, OK or T (set by compile_plan)

    # -- the cache -----------------------------------------------------------------------------------------
    def bind(self, layout: Layout, values: np.ndarray) -> Plan | None:
        """This plan for later datagrams of `layout` (learned from the datagram this plan was compiled from,
        `values` its numbers): each float argument's word is read from them; an int argument is part of the
        layout, so its value stays. None if the layout does not describe these messages."""
        if len(layout.messages) != self.n_messages:
            return None
        words, var = [], []
        for slot, (m, a) in enumerate(self.sources):
            tags = layout.messages[m].tags
            if tags[1 + a] == "f":
                words.append(layout.messages[m].float_words[tags.count("f", 1, 1 + a)])
                var.append(slot)
        self.layout = layout
        self._words = np.array(words, dtype=np.intp)
        if len(var) < len(self.sources):
            self._var, self._const = np.array(var, dtype=np.intp), values.copy()
        return self

    def read(self, words: np.ndarray) -> np.ndarray:
        """The numbers of a datagram (big-endian uint32 words) that matches `layout`."""
        v = words[self._words].view(">f4").astype(np.float64)
        if self._const is None:
            return v
        out = self._const.copy()
        out[self._var] = v
        return out

    # -- the number half: run ------------------------------------------------------------------------------
    def run(self, values: np.ndarray, st: VmcState, count) -> bool:
        """Apply a datagram of this layout to `st`; `count(reason)` for each message dropped. True if the
        committed face or a bone changed."""
        if self._rest:  # each part is independent of the others; the clips and bones are the common frame
            self._run_rest(values, st, count)
        changed = False
        for b in self.blends:
            changed |= _run_blends(b, values if b.whole else values[b.lo:b.hi], st, count)
        if self.bone_idx:
            changed |= _run_bones(self.bone_idx, values[self.bones_lo:self.bones_mid],
                                  values[self.bones_mid:self.bones_hi], st, count)
        if st.pending_count and not st.apply_seen:
            changed |= st.commit()  # a sender that never sends Apply
        return changed

    def _run_rest(self, values: np.ndarray, st: VmcState, count) -> None:
        for reason in self.errors:
            count(reason)
        st.ignored += self.ignored
        for loaded, tracking in self.oks:
            st.loaded = bool(values[loaded] != 0)
            if tracking is not None:
                st.tracking_ok = tracking is True or bool(values[tracking] != 0)
        if self.time_slot is not None:
            st.sender_time = float(values[self.time_slot])


def compile_plan(messages) -> tuple[Plan, np.ndarray]:
    """The plan of a datagram's VMC messages (python-osc's, in order) and their numbers, one per slot."""
    plan = Plan()
    plan.n_messages = len(messages)
    blend_vals: list[float] = []
    blend_src: list[tuple[int, int]] = []
    targets: list[tuple[str, int]] = []  # the current run of Blend/Val
    pos_vals: list[float] = []
    pos_src: list[tuple[int, int]] = []
    rot_vals: list[float] = []
    rot_src: list[tuple[int, int]] = []
    scalars: list[tuple[int, int, float]] = []  # OK and T arguments: (message, argument, value)
    oks: list[tuple[int, int | None]] = []  # (loaded, tracking) as indices into scalars, -1 for "True"
    for mi, m in enumerate(messages):
        addr, p = m.address, m.params
        try:
            if addr == BLEND_VAL:
                if len(p) < 2:
                    raise OscError("too_few_args")
                v = number(p[1])
                if not isinstance(p[0], str):
                    raise OscError("wrong_type")
                blend_vals.append(v)
                blend_src.append((mi, 1))
                targets.append(classify_blend(p[0]))
            elif addr == BLEND_APPLY:
                plan.blends.append(_Blends(len(blend_vals) - len(targets), targets, True))
                targets = []
            elif addr == BONE_POS or addr == ROOT_POS:
                if len(p) < 8:
                    raise OscError("too_few_args")
                if not isinstance(p[0], str):
                    raise OscError("wrong_type")
                v7 = [number(x) for x in p[1:8]]
                pos_vals += v7[:3]
                pos_src += [(mi, 1), (mi, 2), (mi, 3)]
                rot_vals += v7[3:]
                rot_src += [(mi, 4), (mi, 5), (mi, 6), (mi, 7)]
                # Root/Pos is checked like a bone, then unused: the model's world placement means nothing in 2D
                b = BONE_INDEX.get(p[0].lower()) if addr == BONE_POS else None
                plan.bone_idx.append(-1 if b is None else b)
            elif addr == OK:
                if len(p) < 1:
                    raise OscError("too_few_args")
                scalars.append((mi, 0, number(p[0])))
                loaded = len(scalars) - 1
                if len(p) >= 4:
                    try:
                        scalars.append((mi, 3, number(p[3])))
                    except OscError:
                        oks.append((loaded, None))  # loaded is read, then the message is dropped
                        raise
                    oks.append((loaded, len(scalars) - 1))
                else:
                    oks.append((loaded, -1))
            elif addr == TIME:
                plan.has_time = True
                if len(p) < 1:
                    raise OscError("too_few_args")
                scalars.append((mi, 0, number(p[0])))
                plan.time_slot = len(scalars) - 1
            elif addr in IGNORED or addr.startswith(THRU_PREFIX):
                plan.ignored += 1
            else:
                raise OscError("unknown_address")
        except OscError as e:
            plan.errors.append(e.args[0])
    if targets:
        plan.blends.append(_Blends(len(blend_vals) - len(targets), targets, False))
    lo = len(blend_vals)
    plan.bones_lo, plan.bones_mid = lo, lo + len(pos_vals)
    plan.bones_hi = s0 = plan.bones_mid + len(rot_vals)
    plan.oks = [(s0 + a, None if b is None else True if b < 0 else s0 + b) for a, b in oks]
    if plan.time_slot is not None:
        plan.time_slot += s0
    plan.sources = blend_src + pos_src + rot_src + [(m, a) for m, a, _ in scalars]
    plan._rest = bool(plan.errors or plan.ignored or plan.oks or plan.time_slot is not None)
    for b in plan.blends:
        b.whole = b.lo == 0 and b.hi == len(plan.sources)
    values = np.array(blend_vals + pos_vals + rot_vals + [v for _, _, v in scalars], dtype=np.float64)
    return plan, values


# -- the number half: the rules for values ---------------------------------------------------------------------
def _run_blends(b: _Blends, v: np.ndarray, st: VmcState, count) -> bool:
    if b.commit and b.unique and not st.pending_count and b.n_known <= MAX_PENDING and \
            (not len(v) or np.abs(v).max() <= MAX_BLEND):  # also false for NaN
        # The common frame, every value good and Apply in the same bundle: what commit() would write,
        # without the dicts.
        st.apply_seen = True
        if b.n_unknown:
            st.blend_names_unknown += b.n_unknown
        st.write(b.ark_put, v[b.ark_take], b.eye_look, b.vrm_put, v[b.vrm_take])
        return b.n_known > 0
    ark_pos, ark_idx, vrm_pos, vrm_idx = b.ark_pos, b.ark_idx, b.vrm_pos, b.vrm_idx
    n_unknown, eye_look, n = b.n_unknown, b.eye_look, b.n_known
    if len(v) and not np.abs(v).max() <= MAX_BLEND:  # also catches NaN; the whole run is checked at once
        finite = np.isfinite(v)
        ok = finite & (np.abs(np.where(finite, v, 0.0)) <= MAX_BLEND)
        for reason, k in (("non_finite", len(v) - int(finite.sum())), ("absurd_value", int((finite & ~ok).sum()))):
            for _ in range(k):
                count(reason)
        keep_a, keep_v = ok[ark_pos], ok[vrm_pos]
        ark_pos, ark_idx, vrm_pos, vrm_idx = ark_pos[keep_a], ark_idx[keep_a], vrm_pos[keep_v], vrm_idx[keep_v]
        n = len(ark_pos) + len(vrm_pos)
        n_unknown = int(ok.sum()) - n
        eye_look = not EYE_LOOK.isdisjoint(ark_idx.tolist())
    st.blend_names_unknown += n_unknown
    if b.commit and b.unique and not st.pending_count and n <= MAX_PENDING:
        st.apply_seen = True  # as above, with the bad values left out
        st.write(ark_idx, v[ark_pos], eye_look, vrm_idx, v[vrm_pos])
        return n > 0
    ark = zip(np.arange(len(v))[ark_pos].tolist(), ark_idx.tolist())  # (position in the run, target)
    vrm = zip(np.arange(len(v))[vrm_pos].tolist(), vrm_idx.tolist())
    if st.pending_count + n > MAX_PENDING:
        # Every (MAX_PENDING + 1)-th value since the pending frame started drops it: where the last drop
        # falls, in message order, and what is left after it.
        period, first = MAX_PENDING + 1, MAX_PENDING + 1 - st.pending_count
        drops = 1 + (n - first) // period
        for _ in range(drops):
            count("too_many_blends")
        ark, vrm = list(ark), list(vrm)
        cut = sorted(k for k, _ in ark + vrm)[first + (drops - 1) * period - 1]
        ark, vrm = [(k, i) for k, i in ark if k > cut], [(k, i) for k, i in vrm if k > cut]
        st.pending_arkit, st.pending_vrm, st.pending_count = {}, {}, 0
        n = len(ark) + len(vrm)
    vl = v.tolist()
    st.pending_arkit.update((i, vl[k]) for k, i in ark)
    st.pending_vrm.update((i, vl[k]) for k, i in vrm)
    st.pending_count += n
    if b.commit:
        st.apply_seen = True
        return st.commit()
    return False


def _run_bones(bone_idx: list[int], pos: np.ndarray, q: np.ndarray, st: VmcState, count) -> bool:
    pos, q = pos.reshape(-1, 3), q.reshape(-1, 4)  # a row per message: position, rotation x y z w
    norm = np.sqrt((q * q).sum(axis=1))  # summed left to right, as math.sqrt(qx*qx + qy*qy + qz*qz + qw*qw)
    ok = None
    # NaN fails every comparison, so this is the common case only: every row good.
    if np.abs(pos).max() <= MAX_POSITION and MIN_QUAT_NORM <= norm.min() and norm.max() <= MAX_QUAT_NORM:
        rows = (q / norm[:, None]).tolist()
    else:
        finite = np.isfinite(pos).all(axis=1) & np.isfinite(q).all(axis=1)
        with np.errstate(all="ignore"):  # a dropped row may divide by 0 or NaN; it is not kept
            ok = finite & (np.abs(pos).max(axis=1) <= MAX_POSITION) & (norm >= MIN_QUAT_NORM) & \
                (norm <= MAX_QUAT_NORM)
            rows = (q / norm[:, None]).tolist()
        for reason, k in (("non_finite", int((~finite).sum())), ("absurd_value", int((finite & ~ok).sum()))):
            for _ in range(k):
                count(reason)
    bones, changed = st.bones, False
    for b, row, good in zip(bone_idx, rows, _ALL if ok is None else ok.tolist()):
        if b >= 0 and good:
            bones[b] = tuple(row)
            changed = True
    if changed:
        st.bones_version += 1
    return changed


_ALL = itertools.repeat(True)

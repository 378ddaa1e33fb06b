"""iFacialMocap's native UDP stream (v1 `name-value`, v2 `name&value`; protocols/trackers.md, "iFacialMocap").

Parsing is tolerant: names in any spelling (`eyeBlink_L`, `eyeBlinkLeft`, `EyeBlinkLeft`), spaces around the
separator, unknown keys ignored, missing keys keep their last value. A phone sends the same key layout every
frame, so after one full parse we keep a template: the datagram with its numbers deleted. A datagram with the
same template only needs its numbers read, which is what makes 50k packets/s possible in Python.
"""
from __future__ import annotations

import math
import operator
import time

from ..defaults import IFM_PORT
from .names import ARKIT_NAMES, arkit_index, face_warnings
from .pipeline import SourcePipeline
from .udp import MAX_DATAGRAM, Malformed, UdpReceiver

START_V1 = b"iFacialMocap_sahuasouryya9218sauhuiayeta91555dy3719"
START_V2 = START_V1 + b"|sendDataVersion=v2"
MAX_VALUE = 1000.0  # blend values are 0..100; anything past this is garbage, not a face
MAX_ANGLE = 100000.0  # degrees; wrapped to (-180, 180] below this, garbage above

N_BLEND = len(ARKIT_NAMES)
_NUMERIC = b"0123456789.-+"
_ONLY_NUMBERS = bytes(c if c in _NUMERIC else 0x20 for c in range(256))
_PERCENT = {str(i).encode(): i / 100.0 for i in range(101)}
_PERCENT_V1 = {b"-" + k: v for k, v in _PERCENT.items()}  # v1 `name-33` reads as the token `-33`
_NAME_CACHE: dict[str, int] = {}
for _n in ARKIT_NAMES:  # the spellings senders use, resolved once
    for _s in (_n, _n[0].upper() + _n[1:], _n.replace("Left", "_L").replace("Right", "_R")):
        _NAME_CACHE[_s] = arkit_index(_s)


def _number(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise Malformed("bad_number") from None
    if not math.isfinite(v):
        raise Malformed("non_finite")
    return v


def _angles(s: str, n: int) -> tuple[float, ...]:
    parts = s.split(",")
    if len(parts) != n:
        raise Malformed("bad_head" if n == 6 else "bad_eye")
    vals = tuple(_number(p) for p in parts)
    for v in vals[:3]:
        if abs(v) > MAX_ANGLE:
            raise Malformed("absurd_value")
    return tuple(_wrap(v) for v in vals[:3]) + vals[3:]


def _wrap(a: float) -> float:
    """Degrees into [-180, 180) (some senders use Unity's 0..360 Euler angles)."""
    return a if -180.0 <= a < 180.0 else ((a + 180.0) % 360.0) - 180.0


class IfmFrame:
    """Parser state for one sender: the ARKit values (0..1) and the head/eye angles in degrees."""

    def __init__(self):
        self.blend = [0.0] * N_BLEND
        self.head = (0.0, 0.0, 0.0)
        self.head_pos = (0.0, 0.0, 0.0)
        self.right_eye = (0.0, 0.0, 0.0)
        self.left_eye = (0.0, 0.0, 0.0)
        self.bad_items = 0
        self._templates: dict[bytes, tuple] = {}  # by the datagram without its numbers: _Items.template()

    def parse(self, data: bytes) -> None:
        """Update from one datagram; raises Malformed if nothing in it is usable."""
        t = self._templates.get(data.translate(None, _NUMERIC))
        if t is not None and self._fast(data, t):
            return
        self._slow(data)

    def _fast(self, data: bytes, t) -> bool:
        n_tokens, slots, head_at, negate, gather = t
        toks = data.translate(_ONLY_NUMBERS).split()
        if len(toks) != n_tokens:
            return False
        nb = len(slots)
        new = list(map(_PERCENT_V1.get if negate else _PERCENT.get, toks[:nb]))
        if None in new:  # not a plain 0..100 integer somewhere
            if negate:
                return False  # only plain integers are unambiguous after v1's '-' separator
            for k, v in enumerate(new):
                if v is None:
                    try:
                        v = float(toks[k]) / 100.0
                    except ValueError:
                        return False
                    if not -MAX_VALUE / 100.0 <= v <= MAX_VALUE / 100.0:  # also false for NaN
                        return False
                    new[k] = v
        if head_at >= 0:
            try:
                hx, hy, hz = (float(x) for x in toks[nb + head_at:nb + head_at + 3])
            except ValueError:
                return False
            if not (-MAX_ANGLE <= hx <= MAX_ANGLE and -MAX_ANGLE <= hy <= MAX_ANGLE and -MAX_ANGLE <= hz <= MAX_ANGLE):
                return False
            self.head = (_wrap(hx), _wrap(hy), _wrap(hz))
        if gather is not None:
            self.blend = list(gather(new))  # every ARKit key present: one C-level reorder
        else:
            b = self.blend
            for i, v in zip(slots, new):
                if i >= 0:
                    b[i] = v
        return True

    def _slow(self, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("not_text") from None
        items = _Items()
        for item in text.split("|"):
            item = item.strip()
            if item:
                items.add(item)
        if items.good == 0:
            raise Malformed("no_items" if items.bad == 0 else "bad_items")
        self.bad_items += items.bad
        b = self.blend
        for i, v in items.updates:
            b[i] = v
        if items.head is not None:
            self.head, self.head_pos = items.head, items.head_pos
        if items.reye is not None:
            self.right_eye = items.reye
        if items.leye is not None:
            self.left_eye = items.leye
        if items.layout_ok:
            if len(self._templates) >= 16:  # a sender changing layouts (or garbage that parsed): start over
                self._templates.clear()
            self._templates[data.translate(None, _NUMERIC)] = items.template()


class _Items:
    """What the items of one datagram say, and whether its layout can serve as a template."""

    def __init__(self):
        self.good = self.bad = 0
        self.slots: list[int] = []  # per blend item in order: its ARKit index, or -1 for an ignored key
        self.layout_ok = True  # every item is a known key or head/eye item with plain numbers, in order
        self.head_tokens = -1  # where the head's numbers start among the numbers after the blends
        self.extra_tokens = 0  # numbers in head/eye items so far
        self.v1: bool | None = None  # the separator seen: '-' (v1) or '&' (v2)
        self.updates: list[tuple[int, float]] = []
        self.head = self.head_pos = self.reye = self.leye = None

    def add(self, item: str) -> None:
        try:
            if "#" in item:
                self._angle_item(item)
            elif not self._blend_item(item):
                return  # trackingStatus, FM_* extras, ...: ignored, neither good nor bad
            self.good += 1
        except Malformed:
            self.bad += 1
            self.layout_ok = False

    def _angle_item(self, item: str) -> None:
        key, _, rest = item.partition("#")
        key = key.strip()
        if key == "=head":
            vals = _angles(rest, 6)
            self.head, self.head_pos = vals[:3], vals[3:]
            self.head_tokens = self.extra_tokens
            self.extra_tokens += 6
        elif key in ("rightEye", "leftEye"):
            vals = _angles(rest, 3)
            if key == "rightEye":
                self.reye = vals
            else:
                self.leye = vals
            self.extra_tokens += 3
        else:
            raise Malformed("unknown_item")

    def _blend_item(self, item: str) -> bool:
        """False for a key that is not one of the ARKit names (ignored)."""
        sep = item.find("&")
        is_v1 = sep < 0
        if is_v1:
            sep = item.find("-")
        if sep <= 0:
            raise Malformed("unknown_item")
        name = item[:sep].strip()
        i = _NAME_CACHE.get(name)
        if i is None:
            i = arkit_index(name)
        v = _number(item[sep + 1:])
        if abs(v) > MAX_VALUE:
            raise Malformed("absurd_value")
        if self.extra_tokens or (self.v1 is not None and self.v1 != is_v1) or v < 0:
            self.layout_ok = False  # blends after the angles, mixed separators, signs: no template
        if i < 0 and any(c in _NUMERIC for c in name.encode()):
            self.layout_ok = False  # digits in a name would shift the numbers
        self.v1 = is_v1
        self.slots.append(i)
        if i < 0:
            return False
        self.updates.append((i, v / 100.0))
        return True

    def template(self) -> tuple:
        """(numbers in the datagram, slots, where the head starts, v1?, a gather when every key is present)."""
        slots = self.slots
        where = {i: k for k, i in enumerate(slots) if i >= 0}  # the last occurrence wins, as in the parse
        gather = operator.itemgetter(*(where[i] for i in range(N_BLEND))) if len(where) == N_BLEND else None
        return len(slots) + self.extra_tokens, tuple(slots), self.head_tokens, bool(self.v1), gather


class IFacialMocapReceiver(UdpReceiver):
    name = "ifacialmocap"

    def __init__(self, host: str, port: int, pipeline: SourcePipeline, publish,
                 phone: str | None = None, phone_port: int = IFM_PORT, version: str = "v2",
                 resend_after: float = 2.0, max_datagram: int = MAX_DATAGRAM):
        super().__init__(host, port, max_datagram)
        self.pipeline, self.publish = pipeline, publish
        self.frame = IfmFrame()
        self.phone = phone
        self.phone_port = phone_port
        self.start_string = START_V2 if version == "v2" else START_V1
        self.resend_after = resend_after
        self.handshakes_sent = 0
        self.handshake_errors = 0
        self._last_data = b""
        self._last_handshake = -1e18

    def start(self) -> None:
        super().start()
        self.send_handshake()

    def send_handshake(self) -> None:
        """Ask the phone to stream to us; sent from our own socket so the reply port is ours."""
        if not self.phone or self.sock is None:
            return
        self._last_handshake = time.monotonic()
        try:
            self.sock.sendto(self.start_string, (self.phone, self.phone_port))
            self.handshakes_sent += 1
        except OSError:  # no route yet (phone off the network): try again later
            self.handshake_errors += 1

    def on_silence(self, t: float) -> None:
        # Re-send while no data arrives, so a phone app (re)started later still finds us.
        if not self.phone:
            return
        silent_for = 1e18 if self.last_packet is None else t - self.last_packet
        if silent_for >= self.resend_after and time.monotonic() - self._last_handshake >= self.resend_after:
            self.send_handshake()

    def handle(self, data: bytes, addr, t: float) -> None:
        if data == self._last_data:
            self.repeats += 1  # the app repeats its last frame when it loses the face: not fresh data
            return
        f = self.frame
        f.parse(data)
        self._last_data = data
        self.accepted += 1
        self.last_fresh = t
        self.publish(self.name, self.pipeline.from_arkit(f.blend, f.head, t), t, t)

    def stats(self) -> dict:
        s = super().stats()
        s.update(handshakes_sent=self.handshakes_sent, handshake_errors=self.handshake_errors,
                 bad_items=self.frame.bad_items, phone=None if not self.phone else f"{self.phone}:{self.phone_port}",
                 warnings=face_warnings(self.frame.blend) if self.accepted else [])
        return s


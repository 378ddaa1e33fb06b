"""OSC datagrams: the bundle framing walked once, then python-osc for the messages.

python-osc parses well-formed OSC, but a bundle element with a negative size makes its bundle loop spin
forever, a non-UTF-8 string raises UnicodeDecodeError, and unknown type tags are reported with
`logging.warning` on the root logger (one line per packet). So `frame` walks the bundle framing first (sizes
positive, aligned, inside the datagram, nesting and message counts bounded) and hands python-osc one message
at a time; every parser exception becomes `Malformed`, and python-osc's per-packet warnings are filtered out
of the log: our receivers count those drops instead. The same walk gives the byte template (osc_template.py)
its message and timetag offsets, so the framing rules live here only (protocols/trackers.md, "OSC framing").
"""
from __future__ import annotations

import logging
from typing import NamedTuple

from pythonosc.osc_message import OscMessage

from .udp import Malformed

BUNDLE_PREFIX = b"#bundle\x00"
MAX_DEPTH = 4  # nested bundles
MAX_MESSAGES = 2048  # per datagram


class Framing(NamedTuple):
    messages: list[tuple[int, int]]  # (start, end) byte offsets of every message, bundles flattened in order
    timetags: list[int]  # byte offset of every bundle's 8-byte timetag


def frame(data: bytes) -> Framing:
    """Walk a datagram's bundle framing. Raises Malformed for anything python-osc must not be given."""
    out = Framing([], [])
    _walk(data, 0, len(data), 0, out)
    return out


def _walk(data: bytes, start: int, end: int, depth: int, out: Framing) -> None:
    # Offsets instead of slices: a 3 kB bundle of 60 messages is walked without copying it.
    if data.startswith(BUNDLE_PREFIX, start, end):
        if depth >= MAX_DEPTH:
            raise Malformed("bundle_too_deep")
        if end - start < 16:
            raise Malformed("truncated_bundle")
        out.timetags.append(start + 8)
        i = start + 16
        while i < end:
            if i + 4 > end:
                raise Malformed("truncated_bundle")
            size = int.from_bytes(data[i:i + 4], "big", signed=True)
            i += 4
            if size <= 0 or size % 4 or i + size > end:
                raise Malformed("truncated_bundle")
            _walk(data, i, i + size, depth + 1, out)
            if len(out.messages) > MAX_MESSAGES:
                raise Malformed("too_many_messages")
            i += size
        return
    if not data.startswith(b"/", start, end):
        raise Malformed("not_osc")
    if (end - start) % 4:
        raise Malformed("bad_message")
    out.messages.append((start, end))


def parse_messages(data: bytes) -> list[OscMessage]:
    """All messages of a datagram in order (bundles flattened; timetags carry no VMC meaning)."""
    spans = frame(data).messages
    try:
        return [OscMessage(data[s:e]) for s, e in spans]
    except Exception:  # ParseError, UnicodeDecodeError, IndexError, struct.error...
        raise Malformed("bad_message") from None


class _QuietPythonOsc(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pythonosc" not in record.pathname.replace("\\", "/")


_FILTER = _QuietPythonOsc()


def silence_python_osc_warnings() -> None:
    """Drop python-osc's per-datagram warnings (idempotent); our per-reason counters replace them."""
    root = logging.getLogger()
    if _FILTER not in root.filters:
        root.addFilter(_FILTER)


NUMBER_TYPES = (int, float)  # bool is an int: T/F are accepted where a number is expected


def number(v) -> float:
    if not isinstance(v, NUMBER_TYPES):
        raise Malformed("wrong_type")
    return float(v)

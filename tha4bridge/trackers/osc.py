"""OSC datagrams: the bundle framing walked once, then python-osc for the messages.

python-osc parses well-formed OSC, but a bundle element with a negative size makes its bundle loop spin
forever, a non-UTF-8 string raises UnicodeDecodeError, and unknown type tags are reported with
`logging.warning` on the root logger (one line per packet). So `frame` walks the bundle framing first (sizes
positive, aligned, inside the datagram, nesting and message counts bounded) and hands python-osc one message
at a time; every parser exception becomes `OscError`, and python-osc's per-packet warnings are filtered out
of the log: our receivers count those drops instead. `parse` hands back the walk with the messages, so the
byte layout (osc_template.py) takes its message and timetag offsets from it instead of walking the datagram
again: the framing rules live here only (protocols/trackers.md, "OSC framing").
"""
from __future__ import annotations

import logging
from typing import NamedTuple

from pythonosc.osc_message import OscMessage


class OscError(ValueError):
    """A datagram, or one message of it, that is dropped; `args[0]` is the reason counted in stats.

    Ours, not the socket's: the parsers here and the message meanings built on them (VMC, the `/tha4/` family)
    are pure functions of bytes; the receivers turn a reason into a counted drop."""

BUNDLE_PREFIX = b"#bundle\x00"
MAX_DEPTH = 4  # nested bundles
MAX_MESSAGES = 2048  # per datagram


class Framing(NamedTuple):
    messages: list[tuple[int, int]]  # (start, end) byte offsets of every message, bundles flattened in order
    timetags: list[int]  # byte offset of every bundle's 8-byte timetag


def frame(data: bytes) -> Framing:
    """Walk a datagram's bundle framing. Raises OscError for anything python-osc must not be given."""
    out = Framing([], [])
    _walk(data, 0, len(data), 0, out)
    return out


def _walk(data: bytes, start: int, end: int, depth: int, out: Framing) -> None:
    # Offsets instead of slices: a 3 kB bundle of 60 messages is walked without copying it.
    if data.startswith(BUNDLE_PREFIX, start, end):
        if depth >= MAX_DEPTH:
            raise OscError("bundle_too_deep")
        if end - start < 16:
            raise OscError("truncated_bundle")
        out.timetags.append(start + 8)
        i = start + 16
        while i < end:
            if i + 4 > end:
                raise OscError("truncated_bundle")
            size = int.from_bytes(data[i:i + 4], "big", signed=True)
            i += 4
            if size <= 0 or size % 4 or i + size > end:
                raise OscError("truncated_bundle")
            _walk(data, i, i + size, depth + 1, out)
            if len(out.messages) > MAX_MESSAGES:
                raise OscError("too_many_messages")
            i += size
        return
    if not data.startswith(b"/", start, end):
        raise OscError("not_osc")
    if (end - start) % 4:
        raise OscError("bad_message")
    out.messages.append((start, end))


def parse(data: bytes) -> tuple[Framing, list[OscMessage]]:
    """The framing walk and every message of a datagram in order (bundles flattened; timetags carry no VMC
    meaning)."""
    framing = frame(data)
    try:
        return framing, [OscMessage(data[s:e]) for s, e in framing.messages]
    except Exception:  # ParseError, UnicodeDecodeError, IndexError, struct.error...
        raise OscError("bad_message") from None


def parse_messages(data: bytes) -> list[OscMessage]:
    """Only the messages (the `/tha4/` socket needs no byte layout)."""
    return parse(data)[1]


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
        raise OscError("wrong_type")
    return float(v)

"""OSC datagrams -> python-osc messages, without letting a hostile datagram reach python-osc's weak spots.

python-osc parses well-formed OSC, but a bundle element with a negative size makes its bundle loop spin
forever, a non-UTF-8 string raises UnicodeDecodeError, and unknown type tags are reported with
`logging.warning` on the root logger (one line per packet). So we walk the bundle framing ourselves first
(sizes positive, aligned, inside the datagram), turn every parser exception into `Malformed`, and filter
python-osc's per-packet warnings out of the log: our receivers count those drops instead.
"""
from __future__ import annotations

import logging

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from .udp import Malformed

BUNDLE_PREFIX = b"#bundle\x00"
MAX_DEPTH = 4  # nested bundles
MAX_MESSAGES = 2048  # per datagram


def check_framing(data: bytes, depth: int = 0) -> int:
    """Validate bundle framing; return the number of messages. Raises Malformed."""
    if data[:8] == BUNDLE_PREFIX:
        if depth >= MAX_DEPTH:
            raise Malformed("bundle_too_deep")
        n, i, end = 0, 16, len(data)
        if end < 16:
            raise Malformed("truncated_bundle")
        while i < end:
            if i + 4 > end:
                raise Malformed("truncated_bundle")
            size = int.from_bytes(data[i:i + 4], "big", signed=True)
            i += 4
            if size <= 0 or size % 4 or i + size > end:
                raise Malformed("truncated_bundle")
            n += check_framing(data[i:i + size], depth + 1)
            if n > MAX_MESSAGES:
                raise Malformed("too_many_messages")
            i += size
        return n
    if data[:1] != b"/":
        raise Malformed("not_osc")
    if len(data) % 4:
        raise Malformed("bad_message")
    return 1


def _flatten(bundle: OscBundle, out: list) -> None:
    for item in bundle:
        if isinstance(item, OscBundle):
            _flatten(item, out)
        else:
            out.append(item)


def parse_messages(data: bytes) -> list[OscMessage]:
    """All messages of a datagram in order (bundles flattened; timetags carry no VMC meaning)."""
    check_framing(data)
    try:
        if data[:8] == BUNDLE_PREFIX:
            out: list[OscMessage] = []
            _flatten(OscBundle(data), out)
            return out
        return [OscMessage(data)]
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

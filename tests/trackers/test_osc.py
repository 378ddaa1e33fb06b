"""osc.py's framing walk and osc_template.py's byte layouts (a VMC plan kept with a layout: test_vmc_cache.py)."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle

from tha4bridge.trackers.osc import MAX_DEPTH, MAX_MESSAGES, OscError, frame, parse_messages
from tha4bridge.trackers.osc_template import learn as learn_framed
from tha4bridge.trackers.vmc import VmcReceiver
from tests.trackers.util import bundle, msg


def learn(data: bytes):
    return learn_framed(data, frame(data))


def _bundle_of(*elements: bytes, timetag: int = 1) -> bytes:
    """A bundle around raw elements (python-osc's builder cannot nest)."""
    out = b"#bundle\x00" + struct.pack(">Q", timetag)
    for e in elements:
        out += struct.pack(">i", len(e)) + e
    return out


def _flatten(b: OscBundle) -> list:
    out = []
    for item in b:
        out.extend(_flatten(item) if isinstance(item, OscBundle) else [item])
    return out


def test_frame_finds_every_message_and_timetag():
    m1, m2, m3 = msg("/a", 1.0), msg("/bb", "x", 2), msg("/c")
    assert frame(m1) == ([(0, len(m1))], [])
    data = _bundle_of(m1, _bundle_of(m2, timetag=7), m3)
    spans, timetags = frame(data)
    assert [data[s:e] for s, e in spans] == [m1, m2, m3]
    assert [data[t:t + 8] for t in timetags] == [struct.pack(">Q", 1), struct.pack(">Q", 7)]


def test_parse_messages_matches_python_osc_on_nested_bundles():
    data = _bundle_of(msg("/a", 1.0), _bundle_of(msg("/b", "x", 2), _bundle_of(msg("/c", 3.0))), msg("/d"))
    ours = [(m.address, m.params) for m in parse_messages(data)]
    theirs = [(m.address, m.params) for m in _flatten(OscBundle(data))]
    assert ours == theirs and [a for a, _ in ours] == ["/a", "/b", "/c", "/d"]


@pytest.mark.parametrize("data,reason", [
    (b"hello", "not_osc"),
    (b"/ab", "bad_message"),  # not a multiple of 4
    (b"#bundle\x00\x00\x00", "truncated_bundle"),
    (_bundle_of() + b"\xff\xff\xff\xfc", "truncated_bundle"),  # a negative size
    (_bundle_of() + b"\x00\x00\x00\x00", "truncated_bundle"),  # an empty element
    (_bundle_of() + b"\x00\x00\x00\x06/a\x00\x00", "truncated_bundle"),  # not aligned
    (_bundle_of() + b"\x00\x00\x00\x40/a\x00\x00", "truncated_bundle"),  # past the end
    (_bundle_of() + b"\x00\x00", "truncated_bundle"),  # half a size
    (_bundle_of(b"#bun"), "not_osc"),  # an element too short to be a bundle, and not a message
])
def test_framing_errors(data, reason):
    with pytest.raises(OscError) as e:
        frame(data)
    assert e.value.args[0] == reason


def test_nesting_and_count_limits():
    deep = msg("/a")
    for _ in range(MAX_DEPTH):
        deep = _bundle_of(deep)
    assert len(frame(deep).messages) == 1
    with pytest.raises(OscError, match="bundle_too_deep"):
        frame(_bundle_of(deep))
    many = _bundle_of(*[msg("/a")] * (MAX_MESSAGES + 1))
    with pytest.raises(OscError, match="too_many_messages"):
        frame(many)


def test_layout_lets_floats_and_timetags_change_and_nothing_else():
    def frame_of(v: float, tt: int, name: str = "Joy", n: int = 3) -> bytes:
        return _bundle_of(msg("/VMC/Ext/Blend/Val", name, v), msg("/VMC/Ext/OK", n), timetag=tt)

    layout = learn(frame_of(0.25, 1))
    assert [m.address for m in layout.messages] == ["/VMC/Ext/Blend/Val", "/VMC/Ext/OK"]
    assert layout.messages[0].tags == ",sf"
    data = frame_of(0.75, 99)
    words = np.frombuffer(data, dtype=">u4")
    assert layout.matches(words)
    assert words[layout.messages[0].float_words].view(">f4").tolist() == [0.75]
    assert not layout.matches(np.frombuffer(frame_of(0.75, 1, name="Fun"), dtype=">u4"))  # a string
    assert not layout.matches(np.frombuffer(frame_of(0.75, 1, n=4), dtype=">u4"))  # an int


def test_layout_refuses_types_it_can_not_read():
    assert learn(msg("/a", 1.0)) is not None
    assert learn(msg("/a", True)) is None  # T: no word of its own
    assert learn(b"/VMC/Ext/T\x00\x00,x\x00\x00\x00\x00\x00\x00") is None


def test_vmc_stats_report_the_receiver_itself():
    r = VmcReceiver("127.0.0.1", 0, _NoPipeline(), lambda *a: None)
    frame_ = bundle(("/VMC/Ext/Blend/Val", "JawOpen", 0.5), ("/VMC/Ext/Blend/Apply",), ("/VMC/Ext/Cam", "c", 0.0))
    r.handle(frame_, None, 1.0)  # python-osc, then learned
    r.handle(frame_, None, 2.0)  # the learned layout's plan
    s = r.stats()
    assert s["templates"] == 1 and s["messages"] == 6 and s["ignored"] == 2  # Cam, counted on both paths
    assert s["perfect_sync"] and s["tracking_ok"] and len(s["warnings"]) == 1  # no eye/brow values at all
    assert s["packets"] == 0  # base stats are there too (counted by the socket loop, not by handle)


class _NoPipeline:
    def from_arkit(self, *a):
        return None

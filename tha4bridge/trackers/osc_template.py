"""A datagram's byte layout, learned once: which 32-bit words may change and which must stay as they were.

A sender repeats one layout every frame with new numbers: the same addresses, type tags, strings, ints and
bundle sizes, with other floats (and bundle timetags). python-osc takes ~0.2 ms for a 60-message bundle; a
learned `Layout` checks a datagram of the same length with one numpy AND and compare, after which only its
float words need reading, one fancy index. What the floats mean is the caller's business (vmc_state.Plan.bind
says which argument each float word is). The message and timetag offsets come from osc.py's framing walk of
the same datagram, so the datagram is walked once. Every OSC word is 4-byte aligned (strings are padded), so
word offsets are exact.
"""
from __future__ import annotations

import numpy as np
from pythonosc.parsing import osc_types

from .osc import Framing


class MessageLayout:
    __slots__ = ("address", "tags", "float_words")

    def __init__(self, address: str, tags: str, float_words: list[int]):
        self.address, self.tags = address, tags
        self.float_words = float_words  # word index in the datagram of each float argument, in order


class Layout:
    __slots__ = ("mask", "masked", "messages")

    def __init__(self, mask: np.ndarray, masked: bytes, messages: list[MessageLayout]):
        self.mask = mask  # big-endian uint32 per word: all ones where the word must not change, 0 elsewhere
        self.masked = masked  # the learned datagram's words AND mask
        self.messages = messages

    def matches(self, words: np.ndarray) -> bool:
        """`words`: a datagram of the learned length as big-endian uint32."""
        return (words & self.mask).tobytes() == self.masked


def learn(data: bytes, framing: Framing) -> Layout | None:
    """The layout of a datagram that parsed as OSC (`framing`: osc.frame's walk of it); None when an argument
    is not s, i or f (or it is unreadable)."""
    try:
        spans, timetags = framing
        mask = np.full(len(data) // 4, 0xFFFFFFFF, dtype=np.uint32)
        for off in timetags:
            mask[off // 4:off // 4 + 2] = 0  # a timetag may change every frame
        messages = []
        for start, end in spans:
            m = _message(data[start:end], start)
            if m is None:
                return None
            mask[m.float_words] = 0
            messages.append(m)
    except Exception:  # a string python-osc can not decode, a truncated argument...
        return None
    mask = mask.astype(">u4")
    return Layout(mask, (np.frombuffer(data, dtype=">u4") & mask).tobytes(), messages)


def _message(elem: bytes, offset: int) -> MessageLayout | None:
    address, i = osc_types.get_string(elem, 0)
    tags = "," if i == len(elem) else None  # a message without a type-tag string has no arguments
    if tags is None:
        tags, i = osc_types.get_string(elem, i)
        if not tags.startswith(","):
            return None
    floats: list[int] = []
    for tag in tags[1:]:
        if tag == "s":
            _, i = osc_types.get_string(elem, i)
        elif tag == "f":
            if i + 4 > len(elem):
                return None
            floats.append((offset + i) // 4)
            i += 4
        elif tag == "i":
            i += 4
        else:
            return None
    return MessageLayout(address, tags, floats)

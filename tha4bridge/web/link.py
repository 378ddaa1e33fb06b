"""What the web part receives from the daemon (the composition root hands it over; web/ imports nothing from
daemon/): the one command table's `dispatch`, the running streams, and a place among the frame sink's
listeners."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class DaemonLink:
    # The control command table: dispatch(body, reply) returns the reply map, or transport.control.DEFERRED and
    # calls reply(map) later from another thread; it raises transport.control.RequestError for a refusal.
    dispatch: Callable[[dict, Callable[[dict], None]], object]
    commands: tuple[str, ...]  # the command names (the /api/parameters reply lists them)
    find: Callable[[str], object]  # a running stream by name (its .spec, .poser), or None
    names: Callable[[], list[str]]  # the running streams' names
    listeners: list  # the frame sink's listeners: the feed joins them (transport/sink.py says the contract)
    wake: Callable[[], None]  # a new viewer counts as a subscriber: the render thread goes to full rate at once

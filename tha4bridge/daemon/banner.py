"""What `serve` prints once it is up: endpoints, streams, tracker ports and the addresses to type into a phone."""
from __future__ import annotations

import os
import socket

from .. import __version__
from ..transport.publisher import PROTO_MAJOR, PROTO_MINOR

_LOOPBACK = ("tcp://127.", "tcp://localhost", "tcp://[::1]")


def lan_addresses() -> list[str]:
    """IPv4 addresses a phone on the same network could send tracker packets to."""
    found = []
    try:  # the address of the default route (a UDP connect sends nothing)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(info[4][0])
    except OSError:
        pass
    return [a for a in dict.fromkeys(found) if not a.startswith("127.")]


def banner(control: str, frames: str, transport: str, streams: list[dict], tracker_ports: dict | None) -> str:
    """`streams`: the `streams` reply's maps; `tracker_ports`: None when tracker input is off."""
    lines = [f"tha4bridge {__version__} serving (pid {os.getpid()}, protocol {PROTO_MAJOR}.{PROTO_MINOR})",
             f"  control: {control}",
             f"  frames:  {frames} ({transport})"]
    for s in streams:
        lines.append(f"  stream {s['name']}: {s['student']}" + (f" -> {s['path']}" if s["path"] else ""))
        if s.get("region"):
            x, y, w, h = s["region"]
            lines.append(f"    crop: {w}x{h} at ({x}, {y}) of the {s['full_width']}x{s['full_height']} frame")
        if s.get("visibility_mask"):
            lines.append("    visibility mask: on (only the pixels that can show; whole frames until it is calibrated)")
        if s.get("arithmetic"):
            lines.append(f"    arithmetic: {s['arithmetic']}")
    for what, ep in (("control", control), ("frames", frames)):
        if ep.startswith("tcp://") and not ep.startswith(_LOOPBACK):
            lines.append(f"  note: the {what} socket is reachable from the network (no authentication)")
    if tracker_ports is not None:
        ports = ", ".join(f"{k} udp {v}" for k, v in tracker_ports.items())
        lines.append(f"  trackers: {ports or 'started'}")
        addrs = lan_addresses()
        lines.append(f"  phone: send to {' or '.join(addrs) if addrs else 'this computer’s LAN address'}")
    else:
        lines.append("  trackers: off (set poses with the control socket)")
    return "\n".join(lines)

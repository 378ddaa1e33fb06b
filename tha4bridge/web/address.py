"""`--http [HOST:]PORT` and what counts as loopback (no aiohttp here: the config check imports it)."""
from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str | None:
    """A `Host` header's name, strictly: `127.0.0.1:8080` → `127.0.0.1`, `[::1]:8080` → `::1`, `localhost` →
    `localhost`; None for anything else (`[::1]evil.example`, `[::1`, a port that is not digits, an IPv6
    address without brackets, spaces or an empty name)."""
    if host.startswith("["):
        inside, sep, rest = host[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and _port(rest[1:]))):
            return None
        try:
            return inside if ipaddress.ip_address(inside).version == 6 else None
        except ValueError:
            return None
    name, sep, port = host.partition(":")
    if sep and not _port(port):
        return None
    if not name or any(not (c.isascii() and (c.isalnum() or c in "-.")) for c in name):
        return None
    return name


def _port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 65535


def parse_http(spec: str) -> tuple[str, int]:
    """`8080` → ("127.0.0.1", 8080); `0.0.0.0:8080`, `[::1]:8080` as given. ValueError: one sentence."""
    host, sep, port = spec.rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not host:
        host = "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--http must be [HOST:]PORT with a port from 0 to 65535, got {spec!r}")
    return host, int(port)

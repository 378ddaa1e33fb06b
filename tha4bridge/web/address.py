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


def parse_http(spec: str) -> tuple[str, int]:
    """`8080` → ("127.0.0.1", 8080); `0.0.0.0:8080`, `[::1]:8080` as given. ValueError: one sentence."""
    host, sep, port = spec.rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not host:
        host = "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--http must be [HOST:]PORT with a port from 0 to 65535, got {spec!r}")
    return host, int(port)

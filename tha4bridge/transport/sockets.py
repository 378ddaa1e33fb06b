"""Binding the daemon's ZeroMQ sockets: one way, so a failed bind never leaves a half-open socket behind."""
from __future__ import annotations

import zmq


def bind(ctx: zmq.Context, kind: int, endpoint: str, options: dict[int, int]) -> tuple[zmq.Socket, str]:
    """A socket of `kind` with LINGER 0 and `options`, bound to `endpoint`; returns it and the endpoint it
    really got (with port 0, the one the OS chose). A failed bind closes the socket and raises ZMQError."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    for option, value in options.items():
        sock.setsockopt(option, value)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError:
        sock.close(linger=0)
        raise
    return sock, sock.getsockopt_string(zmq.LAST_ENDPOINT)

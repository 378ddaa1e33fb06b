"""JSON replies of the web server: the control protocol's reply maps with an HTTP status (protocols/web.md)."""
from __future__ import annotations

import json

from aiohttp import web

from ..transport.control import error_reply

# RequestError codes (protocols/control.md) → HTTP statuses; anything else is 500.
STATUS = {"bad_request": 400, "bad_pose": 400, "version": 400, "unauthorized": 401, "forbidden": 403,
          "unknown_command": 404, "unknown_stream": 404, "not_found": 404, "not_allowed": 405,
          "timeout": 408, "not_ready": 409, "too_large": 413, "load_failed": 422, "unavailable": 503, "internal": 500,
          "rate_limited": 429}


def plain(value):
    """What JSON lacks and msgpack carried: numpy scalars and arrays, bytes, sets."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def json_response(reply: dict, status: int = 200) -> web.Response:
    return web.json_response(reply, status=status, dumps=lambda o: json.dumps(o, default=plain))


def error_response(code: str, message: str, request_id=None) -> web.Response:
    return json_response(error_reply(code, message, request_id), STATUS.get(code, 500))

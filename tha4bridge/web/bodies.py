"""A request body as JSON, with limits: every bad body is one of our codes and sentences, never a library's
message or a 500 (protocols/web.md, "Limits").

Python's json would otherwise answer a deep nest with RecursionError, a 5,000-digit integer with the
int-string conversion limit's ValueError, and a 4,000-digit one with an int no float can hold (OverflowError
later, in the command); `NaN`, `Infinity` and `1e999` (not JSON numbers, or not finite) would pass as floats.
"""
from __future__ import annotations

import json
import math

MAX_DIGITS = 308  # an integer literal with more digits cannot be a finite float
POSE_KEYS = ("pose", "params")  # the fields of a request that hold parameter values (set_pose, inject)


class BodyError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class _OutOfRange:
    """Where the body had NaN, ±Infinity, a float literal beyond float's range or an over-long integer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "out-of-range number"


OUT_OF_RANGE = _OutOfRange()


def parse(data: bytes, pose: bool = False):
    """`data` as JSON; BodyError for what we refuse. `pose`: the body is itself a pose map (so an out-of-range
    value in it is `bad_pose`); otherwise one in a request's `pose`/`params` is `bad_pose`, elsewhere
    `bad_request`."""
    seen = []

    def out_of_range(*_):
        seen.append(True)
        return OUT_OF_RANGE

    def parse_float(text: str):
        value = float(text)
        return value if math.isfinite(value) else out_of_range()

    def parse_int(text: str):
        return out_of_range() if len(text) - text.startswith("-") > MAX_DIGITS else int(text)

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("bad_request", "the request body is not UTF-8 text") from None
    try:
        body = json.loads(text, parse_float=parse_float, parse_int=parse_int, parse_constant=out_of_range)
    except RecursionError:
        raise BodyError("bad_request", "the request body nests arrays or objects too deeply to be a request") \
            from None
    except json.JSONDecodeError as e:
        raise BodyError("bad_request", f"the request body is not valid JSON (line {e.lineno}, column {e.colno})") \
            from None
    if seen:
        _refuse_numbers(body, pose)
    return body


def _refuse_numbers(body, pose: bool) -> None:
    what = "must be finite numbers (no NaN or Infinity) that a float can hold"
    if pose and isinstance(body, dict):
        bad = [str(k)[:40] for k, v in body.items() if v is OUT_OF_RANGE]
        if bad:
            raise BodyError("bad_pose", f"pose values {what}: {', '.join(bad[:5])}")
    if isinstance(body, dict):
        for key in POSE_KEYS:
            values = body.get(key)
            if isinstance(values, dict):
                bad = [str(k)[:40] for k, v in values.items() if v is OUT_OF_RANGE]
                if bad:
                    raise BodyError("bad_pose", f"'{key}' values {what}: {', '.join(bad[:5])}")
    raise BodyError("bad_request", f"numbers in a request {what} (over {MAX_DIGITS} digits is too long)")

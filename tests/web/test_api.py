"""The JSON API against a real daemon: the same commands and codes as the control socket, over HTTP."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tha4bridge.daemon.commands import COMMANDS
from tha4bridge.pose import PARAMETER_NAMES
from tha4bridge.web.replies import STATUS

from .util import WebServed, http


def test_reads_answer_like_the_control_socket(served):
    status, reply = http(served.base, "GET", "/api/streams")
    zmq_reply = served.ctl.request("streams")
    zmq_reply.pop("id", None)  # the client library numbers its requests
    assert status == 200 and reply == zmq_reply
    status, hello = http(served.base, "GET", "/api/hello")
    assert status == 200 and hello["parameter_names"] == list(PARAMETER_NAMES)
    status, stats = http(served.base, "GET", "/api/stats")
    assert status == 200 and "demo" in stats["streams"]
    status, params = http(served.base, "GET", "/api/parameters")
    grouped = [n for g in params["groups"] for n in g["names"]]
    assert sorted(grouped) == sorted(PARAMETER_NAMES) and params["commands"] == sorted(COMMANDS)


def test_set_pose_get_pose_release(served):
    status, reply = http(served.base, "POST", "/api/pose/demo?hold=0", {"mouth_aaa": 0.75})
    assert status == 200 and reply["applied"] == 1 and reply["hold"] == 0
    status, pose = http(served.base, "GET", "/api/pose/demo")
    assert status == 200 and pose["source"] == "control" and pose["pose"]["mouth_aaa"] == pytest.approx(0.75)
    status, reply = http(served.base, "POST", "/api/release/demo")
    assert status == 200 and reply["stream"] == ["demo"]
    assert not served.ctl.request("get_pose", stream="demo")["hold_remaining"]  # the hold is gone
    # the generic form, with an id echoed
    status, reply = http(served.base, "POST", "/api/command",
                         {"cmd": "set_pose", "stream": "demo", "pose": {"head_x": -0.5}, "hold": 1, "id": 7})
    assert status == 200 and reply["id"] == 7


def test_load_and_unload_reply_later(served):
    status, reply = http(served.base, "POST", "/api/command", {"cmd": "load", "path": "demo", "name": "second"})
    assert status == 200 and reply["stream"]["name"] == "second"
    assert "second" in [s["name"] for s in served.ctl.request("streams")["streams"]]
    status, reply = http(served.base, "POST", "/api/command", {"cmd": "load", "path": "/no/such/folder"})
    assert status == 422 and reply["code"] == "load_failed"
    status, reply = http(served.base, "POST", "/api/command", {"cmd": "unload", "stream": "second"})
    assert status == 200 and reply == {"ok": True, "stream": "second"}


def test_every_command_answers_json_with_a_fitting_status(served):
    """Each command with no arguments: a reply, never a crash (shutdown and load are tested elsewhere)."""
    for cmd in sorted(set(COMMANDS) - {"shutdown", "load"}):
        status, reply = http(served.base, "POST", "/api/command", {"cmd": cmd})
        assert status == (200 if reply["ok"] else STATUS[reply["code"]]), (cmd, reply)
        assert status != 500, (cmd, reply)
    status, reply = http(served.base, "POST", "/api/command", {"cmd": "calibrate"})
    assert (status, reply["code"]) == (503, "unavailable")  # --no-trackers


@pytest.mark.parametrize("raw, code, status, words", [
    (b"{not json", "bad_request", 400, "not valid JSON"),
    (b"[1, 2]", "bad_request", 400, "must be a JSON object, got list"),
    (b'{"cmd": "dance"}', "unknown_command", 404, "unknown command 'dance'"),
    (b'{"nocmd": 1}', "bad_request", 400, "'cmd'"),
    (b'{"cmd": "set_pose", "stream": "demo", "pose": "smile"}', "bad_request", 400, "'pose' must be a map"),
    (b'{"cmd": "set_pose", "stream": "demo", "pose": {"mouth_aaa": "1"}}', "bad_pose", 400, "must be numbers"),
    (b'{"cmd": "set_pose", "stream": "demo", "pose": {}, "hold": -1}', "bad_request", 400, "'hold'"),
    (b'{"cmd": "get_pose", "stream": "nobody"}', "unknown_stream", 404, "nobody"),
    (b'{"cmd": "streams", "proto": 9}', "version", 400, "protocol 1.x"),
])
def test_bad_requests(served, raw, code, status, words):
    got_status, reply = http(served.base, "POST", "/api/command", raw=raw)
    assert (got_status, reply["ok"], reply["code"]) == (status, False, code)
    assert words in reply["error"]


def test_too_large_body(served):
    status, reply = http(served.base, "POST", "/api/command", raw=b" " * (2 << 20))
    assert (status, reply["code"]) == (413, "too_large") and "1 MiB" in reply["error"]


def test_foreign_pages_and_names_are_refused(served):
    evil = {"Origin": "http://evil.example"}
    status, reply = http(served.base, "POST", "/api/release/demo", headers=evil)
    assert (status, reply["code"]) == (403, "forbidden") and "evil.example" in reply["error"]
    own = {"Origin": served.base}
    assert http(served.base, "POST", "/api/release/demo", headers=own)[0] == 200
    # the frame WebSocket too: a foreign page may not open it
    async def ws_status(headers):
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"ws://127.0.0.1:{served.port}/ws/frames/demo", headers=headers):
                    return 101
            except aiohttp.WSServerHandshakeError as e:
                return e.status

    assert asyncio.run(ws_status(evil)) == 403
    assert asyncio.run(ws_status(own)) == 101
    # DNS rebinding: a foreign name that resolves to 127.0.0.1
    status, reply = http(served.base, "GET", "/api/streams", headers={"Host": f"evil.example:{served.port}"})
    assert (status, reply["code"]) == (403, "forbidden")


def test_beyond_loopback_needs_the_token_and_load_stays_off(tmp_path):
    s = WebServed(log_dir=tmp_path, host="0.0.0.0")
    try:
        assert s.token, "the banner prints the token"
        status, reply = http(s.base, "GET", "/api/streams")
        assert (status, reply["code"]) == (401, "unauthorized") and "?token=" in reply["error"]
        assert http(s.base, "GET", "/api/streams?token=wrong")[0] == 401
        assert http(s.base, "GET", f"/api/streams?token={s.token}")[0] == 200
        assert http(s.base, "GET", "/api/streams", headers={"Authorization": f"Bearer {s.token}"})[0] == 200
        status, reply = http(s.base, "POST", f"/api/command?token={s.token}", {"cmd": "load", "path": "demo"})
        assert (status, reply["code"]) == (403, "forbidden") and "--http-allow-load" in reply["error"]
        status, reply = http(s.base, "POST", f"/api/command?token={s.token}",
                             {"cmd": "speak", "path": "/etc/passwd"})
        assert (status, reply["code"]) == (403, "forbidden")
        status, reply = http(s.base, "POST", f"/api/command?token={s.token}", {"cmd": "shutdown"})
        assert status == 200 and reply["ok"]
        assert s.proc.wait(20) == 0
    finally:
        s.stop()

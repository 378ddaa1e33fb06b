"""The control socket's server side on real sockets: envelopes (DEALER and REQ), ids, deferred replies, a
crashing command, and requests that are not one msgpack map."""
import threading

import msgpack
import pytest
import zmq

from tha4bridge.client import Control, ControlError
from tha4bridge.transport.control import DEFERRED, ControlServer, RequestError


def endpoint() -> str:
    return "tcp://127.0.0.1:0"  # the server binds port 0 and reports the port it got (server.endpoint)


def run_server(server, handler, stop):
    while not stop.is_set():
        server.poll(handler, timeout_ms=20)


def test_control_server_envelopes_ids_and_crashing_commands():
    ctx = zmq.Context()
    server = ControlServer(endpoint(), ctx)

    def handler(request):
        cmd = request.body.get("cmd")
        if cmd == "echo":
            return {"ok": True, "body": request.body}
        if cmd == "boom":
            raise ZeroDivisionError("division by zero")
        if cmd == "later":
            threading.Timer(0.05, server.reply_later, (request, {"ok": True, "late": True})).start()
            return DEFERRED
        raise RequestError("unknown_command", f"unknown command {cmd!r}")

    stop = threading.Event()
    t = threading.Thread(target=run_server, args=(server, handler, stop))
    t.start()
    try:
        with Control(server.endpoint, timeout=3) as ctl:
            r = ctl.call("echo", x=1)
            assert r["body"]["x"] == 1 and r["id"] == r["body"]["id"]
            r = ctl.request("boom")
            assert r["ok"] is False and r["code"] == "internal" and "ZeroDivisionError" in r["error"]
            assert ctl.call("later")["late"] is True
            with pytest.raises(ControlError) as e:
                ctl.call("nope")
            assert e.value.code == "unknown_command"
        req = ctx.socket(zmq.REQ)  # a plain REQ client (what C# or a script may use)
        req.connect(server.endpoint)
        req.send(msgpack.packb({"cmd": "echo"}))
        assert req.poll(3000) and msgpack.unpackb(req.recv())["ok"] is True
        req.close(0)
        assert server.requests >= 5 and server.errors >= 2
    finally:
        stop.set()
        t.join()
        server.close()
        ctx.term()



def test_requests_that_are_not_one_map_are_refused_with_a_code():
    ctx = zmq.Context()
    server = ControlServer(endpoint(), ctx)
    seen = []

    def handler(request):
        seen.append(request.body)
        return {"ok": True}

    stop = threading.Event()
    t = threading.Thread(target=run_server, args=(server, handler, stop))
    t.start()
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(server.endpoint)
    try:
        replies = []
        for frames in ([b"", b"\xc1"], [b"", msgpack.packb([1, 2])], [b"", b"a", b"b"]):
            dealer.send_multipart(frames)
            assert dealer.poll(3000), f"no reply to {frames!r}"
            empty, body = dealer.recv_multipart()
            replies.append(msgpack.unpackb(body))
        assert [r["code"] for r in replies] == ["bad_request"] * 3
        assert "msgpack" in replies[0]["error"] and "map" in replies[1]["error"] and "frames" in replies[2]["error"]
        assert seen == []  # the handler never saw them
        assert server.errors == 3
    finally:
        dealer.close(0)
        stop.set()
        t.join()
        server.close()
        ctx.term()

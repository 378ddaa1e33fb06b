"""Issue 15 items 2 and 8 at the transport level: a control request over 1 MiB is answered (REQ clients do
not hang), our client refuses to send one, and stream names made only of dots are refused."""
import threading

import msgpack
import pytest
import zmq

from tha4bridge.client import Control, ControlError
from tha4bridge.transport.control import MAX_REQUEST, ControlServer
from tha4bridge.transport.ring import STREAM_NAME, FrameRing, safe_stream_name


def endpoint() -> str:
    return "tcp://127.0.0.1:0"  # the server binds port 0 and reports the port it got (server.endpoint)


@pytest.fixture
def server():
    ctx = zmq.Context()
    srv = ControlServer(endpoint(), ctx)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            srv.poll(lambda r: {"ok": True, "cmd": r.body.get("cmd")}, timeout_ms=20)

    t = threading.Thread(target=loop)
    t.start()
    yield srv
    stop.set()
    t.join()
    srv.close()
    ctx.term()


def test_request_over_the_limit_is_answered_and_counted(server):
    big = msgpack.packb({"cmd": "set_pose", "id": 7, "pad": "x" * (MAX_REQUEST + 10)})
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)  # the plain REQ client the issue saw hang forever
    req.connect(server.endpoint)
    try:
        req.send(big)
        assert req.poll(5000, zmq.POLLIN), "a request over 1 MiB got no reply"
        reply = msgpack.unpackb(req.recv(), raw=False)
    finally:
        req.close(linger=0)
        ctx.term()
    assert reply["ok"] is False and reply["code"] == "too_large"
    assert str(len(big)) in reply["error"] and str(MAX_REQUEST) in reply["error"]
    assert server.too_large == 1 and server.errors == 1
    with Control(server.endpoint, timeout=3) as ctl:  # and the socket keeps serving
        assert ctl.call("hello")["cmd"] == "hello"


def test_client_refuses_to_send_over_the_limit(server):
    with Control(server.endpoint, timeout=3) as ctl:
        with pytest.raises(ControlError) as e:
            ctl.request("set_pose", pad="x" * MAX_REQUEST)
        assert e.value.code == "too_large" and "1 MiB" in str(e.value) and "not sent" in str(e.value)
        assert ctl.call("hello")["ok"]
    assert server.too_large == 0  # refused before sending: the daemon never saw it


@pytest.mark.parametrize("name", [".", "..", "...."])
def test_names_made_only_of_dots_are_refused(name, tmp_path):
    assert not STREAM_NAME.match(name)
    with pytest.raises(ValueError) as e:
        FrameRing(name, 8, 8, directory=tmp_path)
    assert "only dots" in str(e.value)
    assert not list(tmp_path.iterdir())  # no ring file appeared
    assert safe_stream_name(name) == "stream"  # a folder named ".." still gets a usable stream name


def test_names_with_dots_and_more_are_fine(tmp_path):
    for name in ("a.b", ".hidden", "v1.2", "x..y"):
        assert STREAM_NAME.match(name), name

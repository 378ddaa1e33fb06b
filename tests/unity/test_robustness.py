"""The C# client against bad peers: malformed frame messages, a non-ZeroMQ server, a silent server, and a
daemon restart. It must count and skip what it cannot use, fail with a clear message, and never crash."""
from __future__ import annotations

import hashlib
import socket
import subprocess
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from tests.lines import Lines
from tests.unity.csharp_build import MISSING, SKIP_REASON, Daemon
from tests.unity.test_client import core_tests, run_csharp  # noqa: F401  (core_tests is a fixture)

pytestmark = pytest.mark.skipif(bool(MISSING), reason=SKIP_REASON)


def header(**over) -> dict:
    h = {"proto": 1, "proto_minor": 0, "stream": "bad", "seq": 1, "generation": 0, "width": 4, "height": 2,
         "stride": 16, "format": "rgba8", "alpha": "straight", "color_space": "srgb", "transport": "inline",
         "size": 32, "t_pose": 1.0, "t_render_start": 1.0, "t_render_end": 1.0, "t_published": 1.0,
         "pose_source": "idle"}
    h.update(over)
    return h


def test_csharp_skips_malformed_frame_messages(core_tests, tmp_path):  # noqa: F811
    not_a_ring = tmp_path / "tha4bridge-1-bad.ring"
    not_a_ring.write_bytes(bytes(8192))
    pixels = np.arange(32, dtype=np.uint8).reshape(2, 4, 4)
    bad = [
        [b"bad", b"\xc1"],                                              # not msgpack
        [b"bad", msgpack.packb([1, 2])],                                 # not a map
        [b"bad", msgpack.packb(header(proto=2)), pixels.tobytes()],      # another major version
        [b"bad", msgpack.packb({k: v for k, v in header().items() if k != "seq"}), pixels.tobytes()],
        [b"bad", msgpack.packb(header(width=-4)), pixels.tobytes()],     # inconsistent sizes
        [b"bad", msgpack.packb(header(format="bgra8")), pixels.tobytes()],
        [b"bad", msgpack.packb(header()), b"short"],                     # pixel part of the wrong size
        [b"bad", msgpack.packb(header(transport="shm", path="/nonexistent/x.ring", slot=0, offset=4096))],
        [b"bad", msgpack.packb(header(transport="shm", path=str(not_a_ring), slot=0, offset=4096))],
    ]
    ignored = [[b"bad"], [b"badger", msgpack.packb(header(stream="badger")), pixels.tobytes()]]  # not ours
    good = [b"bad", msgpack.packb(header(seq=5)), pixels.tobytes()]

    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    # The client keeps only the newest of a burst, so each bad message is sent once the client has counted the
    # one before (it prints its bad count as it changes): one at a time however slowly it runs.
    proc = subprocess.Popen(["mono", "--debug", str(core_tests), "watch", f"tcp://127.0.0.1:{port}", "bad", "60", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Lines(proc)
    try:
        assert pub.poll(15000), "the C# client never subscribed"
        assert pub.recv() == b"\x01bad"
        for parts in ignored:
            pub.send_multipart(parts)
        for i, parts in enumerate(bad):
            pub.send_multipart(parts)
            out.json_until(lambda e, n=i + 1: e.get("bad") == n, 20, f"the C# client counting bad message {i + 1}")
        pub.send_multipart(good)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pub.close()
        ctx.term()
    out.rest(10)
    events = out.json()
    assert proc.returncode == 0, "\n".join(e["fail"] for e in events if "fail" in e) + out.tail()
    frames = [e["frame"] for e in events if "frame" in e]
    assert [f["seq"] for f in frames] == [5]
    assert frames[0]["sha_flipped"] == hashlib.sha256(pixels[::-1].tobytes()).hexdigest()
    stats = next(e["stats"] for e in events if "stats" in e)
    assert stats["bad"] == len(bad), stats


def test_csharp_connect_errors_are_clear(core_tests):  # noqa: F811
    # A server that is not ZeroMQ (answers like a web server) and one that accepts and says nothing.
    chatty, silent = socket.socket(), socket.socket()
    for s in (chatty, silent):
        s.bind(("127.0.0.1", 0))
        s.listen(1)
    held = []

    def serve(sock, reply):
        conn, _ = sock.accept()
        held.append(conn)
        if reply:
            conn.sendall(reply)

    threads = [threading.Thread(target=serve, args=(chatty, b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"x" * 64), daemon=True),
               threading.Thread(target=serve, args=(silent, b""), daemon=True)]
    for t in threads:
        t.start()
    try:
        lines, proc = run_csharp(core_tests, "connect", f"tcp://127.0.0.1:{chatty.getsockname()[1]}")
        result = next(line["connect"] for line in lines if "connect" in line)
        assert not result["ok"] and "not a ZeroMQ peer" in result["error"], result
        lines, proc = run_csharp(core_tests, "connect", f"tcp://127.0.0.1:{silent.getsockname()[1]}")
        result = next(line["connect"] for line in lines if "connect" in line)
        assert not result["ok"] and "timed out" in result["error"] and result["ms"] < 5000, result
        with socket.socket() as closed:  # bound, never listening: refused, and no one else can take the port
            closed.bind(("127.0.0.1", 0))
            lines, proc = run_csharp(core_tests, "connect", f"tcp://127.0.0.1:{closed.getsockname()[1]}")
        result = next(line["connect"] for line in lines if "connect" in line)
        assert not result["ok"] and "cannot connect" in result["error"], result
        lines, proc = run_csharp(core_tests, "connect", "ipc:///tmp/x")
        assert proc.returncode != 0 and "only tcp://" in proc.stdout
    finally:
        for s in [chatty, silent, *held]:
            s.close()


def test_csharp_follows_a_daemon_restart(core_tests):  # noqa: F811
    first = Daemon("demo")
    frames_ep, control_ep = first.frames, first.control
    proc = subprocess.Popen(["mono", str(core_tests), "watch", frames_ep, first.stream, "90", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Lines(proc)
    second = None
    try:
        out.json_until(lambda e: "frame" in e, 60, "the C# client's first frame from the first daemon")
        down_at = time.monotonic()
        first.close()
        second = Daemon.on(frames_ep, control_ep, "demo")
        downtime = time.monotonic() - down_at
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        first.close()
        if second is not None:
            second.close()
    out.rest(10)
    lines = out.json()
    assert proc.returncode == 0, "\n".join(e["fail"] for e in lines if "fail" in e) + out.tail()
    generations = {line["frame"]["generation"] for line in lines if "frame" in line}
    assert len(generations) == 2, "the client did not pick up the restarted daemon's new ring"
    stats = next(line["stats"] for line in lines if "stats" in line)
    assert stats["reconnects"] >= 1
    print("C# client CPU during the restart test:", stats["cpu_ms"], "ms; downtime", round(downtime, 1), "s")
    # While the daemon was down the client retried every 500 ms; it must not have spun on a core.
    assert stats["cpu_ms"] < 1000 * max(downtime, 1.0) * 0.5, stats

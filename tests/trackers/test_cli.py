"""The tracker CLI commands as a user runs them: real subprocesses, a real daemon, real UDP."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import pytest
from tests.lines import Lines
from tests.trackers.util import bundle, example_packets


def _cli(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tha4bridge.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_trackers_listen_shows_packets():
    # port 0: the command binds an OS-chosen port and says which in its first line (was bind-then-close)
    p = subprocess.Popen([sys.executable, "-m", "tha4bridge.cli", "trackers", "--seconds", "2.5", "--vmc-port",
                          "0", "--ifm-port", "0", "--host", "127.0.0.1"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lines = Lines(p)
    try:
        first = lines.next_line(60, "its first line")  # "listening: ..." once the ports are bound
        m = re.search(r"vmc UDP 127\.0\.0\.1:(\d+)", first)
        assert m, f"no vmc port in the first line: {first!r}"
        vmc = int(m.group(1))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            s.sendto(bundle(("/VMC/Ext/Blend/Val", "Blink_L", 1.0), ("/VMC/Ext/Blend/Apply",)), ("127.0.0.1", vmc))
            s.sendto(b"garbage", ("127.0.0.1", vmc))
            time.sleep(0.05)
        p.wait(timeout=30)
        out = "".join(lines.rest(10))
    finally:
        s.close()
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out
    assert f"vmc UDP 127.0.0.1:{vmc}" in out
    assert "[vmc]" in out and "eye_wink_left=+1.00" in out and "not_osc" in out


def test_calibrate_talks_to_a_running_daemon(tmp_path):
    pk = example_packets()
    # every port 0: the daemon binds OS-chosen ports and its banner says which (was bind-then-close)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "tha4bridge.cli", "serve", "--student", "demo", "--vmc-port", "0", "--ifm-port",
         "0", "--control", "tcp://127.0.0.1:0", "--frames", "tcp://127.0.0.1:0",
         "--calibration-file", str(tmp_path / "cal.json"), "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        out = Lines(daemon)
        banner = "".join(out.until(lambda line: line.startswith("  trackers:"), 120, "the daemon's banner"))
        ctl = int(re.search(r"control: tcp://127\.0\.0\.1:(\d+)", banner).group(1))
        ifm = int(re.search(r"ifacialmocap udp (\d+)", banner).group(1))
        r = None
        for i in range(30):
            s.sendto(pk["neutral_v2"] if i % 2 else pk["neutral_v1"], ("127.0.0.1", ifm))
            time.sleep(0.05)
            r = _cli("calibrate", "--control", f"tcp://127.0.0.1:{ctl}")
            if r.returncode == 0:
                break
            if daemon.poll() is not None:
                pytest.fail(f"the daemon exited ({daemon.returncode}):\n" + "".join(out.rest(10))[-2000:])
        assert r is not None and r.returncode == 0, (r.stdout, r.stderr)
        assert "ifacialmocap: head pitch -2.2 yaw +3.1 roll -1.4 deg" in r.stdout
        assert (tmp_path / "cal.json").exists()
        r = _cli("calibrate", "--clear", "--control", f"tcp://127.0.0.1:{ctl}")
        assert r.returncode == 0 and "cleared" in r.stdout
        assert not (tmp_path / "cal.json").exists()
    finally:
        s.close()
        daemon.terminate()
        try:
            daemon.wait(timeout=20)  # the output is read by `out` (a second reader would race it)
        except subprocess.TimeoutExpired:
            daemon.kill()


def test_calibrate_without_daemon_is_one_line():
    with socket.socket() as held:  # bound, never listening: nobody can answer on this port during the call
        held.bind(("127.0.0.1", 0))
        r = _cli("calibrate", "--timeout", "0.5", "--control", f"tcp://127.0.0.1:{held.getsockname()[1]}")
    assert r.returncode == 1
    assert r.stdout.strip().count("\n") == 0 and "calibrate:" in r.stdout and "Traceback" not in r.stderr

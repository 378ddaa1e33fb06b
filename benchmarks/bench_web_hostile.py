"""The web side under attack (issue 24): what normal clients keep while one local client floods, slowloris
holds half-open connections, and 200 viewers never read — all over loopback only, bounded, self-stopping.

    nice -n 5 python benchmarks/bench_web_hostile.py                 # ~1.5 min on 2 cores
    python benchmarks/bench_web_hostile.py --seconds 8 --repeat 3    # longer attacks, the stalled run 3 times

A real daemon (`serve --http`, the demo character, --fps 30 --idle-fps 30, its files limited to 1024 as in the
issue's run) and, in this process, the normal clients measured before / during / after each attack: a ZeroMQ
frame subscriber, a WebSocket viewer that reads every frame, and control round trips. Attackers run in their
own processes (raw sockets), so they do not share this process' interpreter lock with the measurements.
Printed per phase: fps of both subscribers, control round trip (median / max ms), daemon CPU (% of one core),
RSS (MB), open fds, and daemon log lines written. Goals (issue 24): other clients keep >= 80 % of their frame
rate, no log grows faster than a line a second, RSS returns within 10 % of where it started.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import re
import resource
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ run from the checkout
from benchmarks.machine import cpu_name  # noqa: E402
from tests.web.util import WebServed  # noqa: E402
from tha4bridge.client import Control, FrameSubscriber  # noqa: E402

HOST = "127.0.0.1"  # every byte this benchmark sends goes to loopback


# --- the daemon -------------------------------------------------------------------------------------------------
class Daemon(WebServed):
    """The daemon under attack: the demo at --fps 30 --idle-fps 30 on loopback ports the OS chose (read back from
    its banner, tests/web/util.py), with at most `nofile` open files, as under the issue's `ulimit -n 1024`."""

    def __init__(self, log_dir: Path, nofile: int):
        # The limit is lowered in this process just while the daemon starts (a child inherits it), so the daemon
        # sizes its connection cap from it (web/limits.py reads it at start) and this process keeps its own.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))
        try:
            super().__init__("--fps", "30", "--idle-fps", "30", log_dir=log_dir, host=HOST)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{self.proc.pid}/status").read_text())
        return int(m.group(1)) / 1024

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def log_lines(self) -> int:
        return self.log.read_text(errors="replace").count("\n")


# --- the normal clients (this process) --------------------------------------------------------------------------
class Normal:
    """A ZeroMQ subscriber, a WebSocket viewer and control round trips, each recording timestamps."""

    def __init__(self, d: Daemon):
        self.d, self.stop = d, threading.Event()
        self.zmq: list[float] = []
        self.ws: list[float] = []
        self.rtt: list[tuple[float, float]] = []
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._zmq, self._ws, self._control)]
        for t in self.threads:
            t.start()

    def _zmq(self) -> None:
        with FrameSubscriber(self.d.frames, "demo") as sub:
            while not self.stop.is_set():
                if sub.recv(timeout=0.2) is not None:
                    self.zmq.append(time.monotonic())

    def _ws(self) -> None:
        import aiohttp

        async def run():
            url = f"ws://{HOST}:{self.d.port}/ws/frames/demo"
            async with aiohttp.ClientSession() as session:
                while not self.stop.is_set():
                    try:
                        async with session.ws_connect(url, max_msg_size=0) as ws:
                            while not self.stop.is_set():
                                msg = await ws.receive(timeout=1.0)
                                if msg.type == aiohttp.WSMsgType.BINARY:
                                    self.ws.append(time.monotonic())
                                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                                  aiohttp.WSMsgType.ERROR):
                                    break
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        await asyncio.sleep(0.2)

        asyncio.run(run())

    def _control(self) -> None:
        ctl = Control(self.d.control, timeout=5.0)
        while not self.stop.wait(0.1):
            t = time.monotonic()
            try:
                ctl.request("streams")
                self.rtt.append((t, (time.monotonic() - t) * 1000))
            except Exception:
                self.rtt.append((t, 5000.0))
        ctl.close()

    def window(self, t0: float, t1: float) -> dict:
        n_zmq = sum(t0 <= t < t1 for t in self.zmq)
        n_ws = sum(t0 <= t < t1 for t in self.ws)
        rtts = [r for t, r in self.rtt if t0 <= t < t1] or [float("nan")]
        return {"zmq_fps": n_zmq / (t1 - t0), "ws_fps": n_ws / (t1 - t0), "rtt_med": statistics.median(rtts),
                "rtt_max": max(rtts)}

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(5)


# --- attackers (own processes, raw sockets, loopback only, bounded by `seconds`) ------------------------------------
def _ws_handshake(port: int, path: str) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
    return s


def _masked_text(payload: bytes) -> bytes:
    mask = b"\x11\x22\x33\x44"
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def attack_flood(port: int, seconds: float, out) -> None:
    """One client sending `{"a":1}` text frames as fast as it can, never reading; reconnects when cut off."""
    batch = _masked_text(b'{"a":1}') * 2000
    sent = connections = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            s = _ws_handshake(port, "/ws/poses/demo")
            connections += 1
            s.settimeout(1.0)
            while time.monotonic() < end:
                s.sendall(batch)
                sent += 2000
        except OSError:
            time.sleep(0.01)
            continue
        finally:
            try:
                s.close()
            except Exception:
                pass
    out.put({"messages": sent, "connections": connections})


def attack_slowloris(port: int, seconds: float, count: int, out) -> None:
    """`count` connections that send a request line and then one header line every 2 s, never finishing;
    each one closed by the server is opened again."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    socks: list = [None] * count
    opened = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for i in range(count):
            if time.monotonic() >= end:
                break
            try:
                if socks[i] is None:
                    s = socket.socket()
                    s.setblocking(False)
                    try:
                        s.connect((HOST, port))
                    except BlockingIOError:
                        pass
                    socks[i] = [s, False]
                    opened += 1
                s, started = socks[i]
                s.send(b"X-Slow: 1\r\n" if started else f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n".encode())
                socks[i][1] = True
            except BlockingIOError:
                pass
            except OSError:
                if socks[i] is not None:
                    socks[i][0].close()
                socks[i] = None
        time.sleep(min(2.0, max(0.0, end - time.monotonic())))
    for entry in socks:
        if entry is not None:
            entry[0].close()
    out.put({"opened": opened})


def attack_stalled(port: int, seconds: float, count: int, out) -> None:
    """`count` frame viewers that complete the handshake and never read a byte."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    socks, failed = [], 0
    end = time.monotonic() + seconds
    for _ in range(count):
        try:
            s = _ws_handshake(port, "/ws/frames/demo")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            socks.append(s)
        except OSError:
            failed += 1
    time.sleep(max(0.0, end - time.monotonic()))
    for s in socks:
        s.close()
    out.put({"connected": len(socks), "failed": failed})


# --- the run ------------------------------------------------------------------------------------------------------
def phase(d: Daemon, normal: Normal, name: str, target, args, seconds: float, settle: float) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    before = (time.monotonic() - 3.0, time.monotonic())
    rss0, fds0, lines0, cpu0 = d.rss_mb(), d.fds(), d.log_lines(), d.cpu_seconds()
    p = ctx.Process(target=target, args=(d.port, seconds, *args, q), daemon=True)
    t_start = time.monotonic()
    p.start()
    time.sleep(seconds * 0.5)
    peak_fds, peak_rss = d.fds(), d.rss_mb()
    p.join(seconds + 60)
    if p.is_alive():
        p.kill()
    t_end = time.monotonic()
    cpu1, lines1 = d.cpu_seconds(), d.log_lines()
    during = (t_start + 1.0, t_end)
    time.sleep(settle)
    after0 = time.monotonic()
    time.sleep(3.0)
    after = (after0, time.monotonic())
    result = {"attack": name, "stats": q.get(timeout=5) if not q.empty() else {},
              "before": normal.window(*before), "during": normal.window(*during), "after": normal.window(*after),
              "cpu_during": 100 * (cpu1 - cpu0) / (t_end - t_start), "rss_before": rss0, "rss_peak": peak_rss,
              "rss_after": d.rss_mb(), "fds_before": fds0, "fds_peak": peak_fds, "fds_after": d.fds(),
              "log_lines": lines1 - lines0, "log_lines_per_s": (lines1 - lines0) / (t_end - t_start)}
    report(result)
    return result


def report(r: dict) -> None:
    b, du, a = r["before"], r["during"], r["after"]
    print(f"\n== {r['attack']}  {r['stats']}")
    print(f"   zmq fps   before {b['zmq_fps']:5.1f}  during {du['zmq_fps']:5.1f} ({pct(du, b, 'zmq_fps')})  "
          f"after {a['zmq_fps']:5.1f}")
    print(f"   ws  fps   before {b['ws_fps']:5.1f}  during {du['ws_fps']:5.1f} ({pct(du, b, 'ws_fps')})  "
          f"after {a['ws_fps']:5.1f}")
    print(f"   control   median/max ms  before {b['rtt_med']:.1f}/{b['rtt_max']:.1f}  during "
          f"{du['rtt_med']:.1f}/{du['rtt_max']:.1f}  after {a['rtt_med']:.1f}/{a['rtt_max']:.1f}")
    print(f"   daemon    CPU during {r['cpu_during']:.0f} %   RSS MB {r['rss_before']:.0f} -> peak "
          f"{r['rss_peak']:.0f} -> {r['rss_after']:.0f}   fds {r['fds_before']} -> peak {r['fds_peak']} -> "
          f"{r['fds_after']}   log +{r['log_lines']} lines ({r['log_lines_per_s']:.2f}/s)")
    sys.stdout.flush()


def pct(during: dict, before: dict, key: str) -> str:
    return f"{100 * during[key] / before[key]:.0f} %" if before[key] else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=6.0, help="each attack's length")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the 200-stalled-viewer attack (RSS)")
    ap.add_argument("--slowloris", type=int, default=1100, help="half-open connections")
    ap.add_argument("--viewers", type=int, default=200, help="stalled viewers")
    ap.add_argument("--nofile", type=int, default=1024, help="the daemon's open-file limit")
    ap.add_argument("--log-dir", default="/tmp/bench_web_hostile", help="where the daemon's log goes")
    args = ap.parse_args()
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs); daemon: demo, --fps 30 --idle-fps 30, "
          f"ulimit -n {args.nofile}; attacks {args.seconds:.0f} s each, loopback only")
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    d = Daemon(Path(args.log_dir), args.nofile)
    print(f"daemon log: {d.log}")
    normal = Normal(d)
    try:
        time.sleep(4.0)  # warm-up: both subscribers at full rate
        rss_start = d.rss_mb()
        results = [phase(d, normal, "flood: {\"a\":1} frames on /ws/poses/demo, never reading", attack_flood, (),
                         args.seconds, 1.0),
                   phase(d, normal, f"slowloris: {args.slowloris} half-open connections", attack_slowloris,
                         (args.slowloris,), args.seconds, 1.0)]
        for i in range(args.repeat):
            results.append(phase(d, normal, f"{args.viewers} stalled viewers (run {i + 1})", attack_stalled,
                                 (args.viewers,), args.seconds, 2.0))
        time.sleep(1.0)
        rss_end = d.rss_mb()
        worst = min(min(r["during"][k] / r["before"][k] for k in ("zmq_fps", "ws_fps") if r["before"][k])
                    for r in results)
        print(f"\nsummary: worst during-attack frame rate {100 * worst:.0f} % of before (goal >= 80 %); "
              f"most log lines a second {max(r['log_lines_per_s'] for r in results):.2f} (goal <= 1); "
              f"RSS {rss_start:.0f} MB at the start, {rss_end:.0f} MB at the end "
              f"({100 * (rss_end - rss_start) / rss_start:+.0f} %, goal within 10 %)")
    finally:
        normal.close()
        d.stop()


if __name__ == "__main__":
    main()

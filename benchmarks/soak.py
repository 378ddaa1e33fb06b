"""The long night: daemons under 60 Hz VMC input for a given time, one shared-memory reader and one ZeroMQ
inline reader, and whether memory, files and frames stay steady.

    python benchmarks/soak.py                       # 10 minutes (the default), the demo character
    python benchmarks/soak.py --minutes 60          # the hour the issue asks for once
    python benchmarks/soak.py --minutes 2 --sample 10 --student ../shared/fixtures/tha4/students/lambda_00

A daemon serves one transport (--transport shm or inline), so the soak runs two: one read by a FrameSubscriber
through shared memory, one read inline. Both get the same VMC packets (a mouth and a blink moving, the head
turning) at 60 Hz. Every --sample seconds it records each daemon's RSS and open file descriptors (from /proc);
at the end it prints fps, latency (pose received by the daemon → frame in the reader) p50/p99, frames dropped
(seq gaps) and torn, the daemon's own send errors, and the slope of RSS over the second half (a least-squares
line, MB per hour). The goal: a flat slope within noise, nothing torn, nothing dropped by the daemon.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ run from the checkout
from tests.daemon.util import Served  # noqa: E402
from tha4bridge.client import FrameSubscriber  # noqa: E402


@dataclass
class Daemon:
    transport: str
    served: Served  # the daemon process, on ports the OS chose (read back from its banner and hello)
    samples: list = field(default_factory=list)  # (seconds since start, RSS MB, open fds)

    @property
    def proc(self) -> subprocess.Popen:
        return self.served.proc

    @property
    def frames(self) -> str:
        return self.served.frames

    @property
    def vmc_port(self) -> int:
        return self.served.hello["trackers"]["vmc"]

    def sample(self, t: float) -> None:
        with open(f"/proc/{self.proc.pid}/status") as f:
            rss_kb = next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        self.samples.append((t, rss_kb / 1024.0, fds))


def start(transport: str, student: str, log_dir: Path) -> Daemon:
    """A daemon serving `transport`, its trackers listening on OS-chosen UDP ports; its log and calibration file in
    `log_dir` (one folder per daemon: the calibration file is theirs alone)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    return Daemon(transport, Served("--student", student, "--transport", transport, log_dir=log_dir, trackers=True))


def vmc_packet(t: float) -> bytes:
    b = OscBundleBuilder(IMMEDIATELY)
    values = [("A", 0.5 + 0.5 * math.sin(t * 5.0)), ("Blink", 1.0 if (t % 3.0) < 0.15 else 0.0)]
    for name, v in values:
        m = OscMessageBuilder("/VMC/Ext/Blend/Val")
        m.add_arg(name)
        m.add_arg(float(v), "f")
        b.add_content(m.build())
    yaw = math.radians(15.0 * math.sin(t * 0.7))
    m = OscMessageBuilder("/VMC/Ext/Bone/Pos")
    for a in ("Head", 0.0, 0.0, 0.0, 0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)):
        m.add_arg(a) if isinstance(a, str) else m.add_arg(float(a), "f")
    b.add_content(m.build())
    b.add_content(OscMessageBuilder("/VMC/Ext/Blend/Apply").build())
    return b.build().dgram


def send_vmc(ports: list[int], stop: threading.Event, rate: float = 60.0) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0, n = time.monotonic(), 0
    while not stop.is_set():
        data = vmc_packet(time.monotonic() - t0)
        for p in ports:
            sock.sendto(data, ("127.0.0.1", p))
        n += 1
        time.sleep(max(t0 + n / rate - time.monotonic(), 0.0))  # a fixed grid: 60 Hz on average
    sock.close()


@dataclass
class Reading:
    frames: int = 0
    latency_ms: list = field(default_factory=list)
    stats: object = None
    first: float = 0.0
    last: float = 0.0


def read(d: Daemon, stop: threading.Event, out: Reading) -> None:
    with FrameSubscriber(d.frames, rcvhwm=64) as sub:
        while not stop.is_set():
            f = sub.recv(timeout=0.5)
            if f is None:
                continue
            now = time.time()
            if out.frames == 0:
                out.first = time.monotonic()
            out.last = time.monotonic()
            out.frames += 1
            if f.header["pose_source"].startswith("tracker"):
                out.latency_ms.append((now - f.header["t_pose"]) * 1000.0)
        out.stats = sub.stats


def slope_mb_per_hour(samples: list) -> float:
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    if len(half) < 2:
        return float("nan")
    t = np.array([s[0] for s in half]) / 3600.0
    rss = np.array([s[1] for s in half])
    return float(np.polyfit(t, rss, 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to soak (default 10)")
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between RSS / open-file samples")
    ap.add_argument("--student", default="demo", help="character: demo or a character-model folder")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="tha4bridge-soak-"))
    print(f"the daemons' logs: {log_dir}/", flush=True)
    daemons = [start(t, args.student, log_dir / t) for t in ("shm", "inline")]
    stop = threading.Event()
    readings = {d.transport: Reading() for d in daemons}
    threads = [threading.Thread(target=send_vmc, args=([d.vmc_port for d in daemons], stop))]
    threads += [threading.Thread(target=read, args=(d, stop, readings[d.transport])) for d in daemons]
    for th in threads:
        th.start()
    t0, duration = time.monotonic(), args.minutes * 60.0
    try:
        while (t := time.monotonic() - t0) < duration:
            for d in daemons:
                d.sample(t)
            print(f"{t / 60:5.1f} min  " + "  ".join(
                f"{d.transport}: RSS {d.samples[-1][1]:.1f} MB fds {d.samples[-1][2]} frames "
                f"{readings[d.transport].frames}" for d in daemons), flush=True)
            time.sleep(min(args.sample, max(duration - t, 0.0)))
        for d in daemons:
            d.sample(time.monotonic() - t0)
        daemon_stats = {}
        for d in daemons:
            daemon_stats[d.transport] = d.served.ctl.stats()
    finally:
        stop.set()
        for th in threads:
            th.join()
        for d in daemons:
            d.served.stop(timeout=30)

    report = {"minutes": args.minutes, "student": args.student}
    for d in daemons:
        r, st = readings[d.transport], daemon_stats[d.transport]
        lat = np.asarray(r.latency_ms) if r.latency_ms else np.asarray([math.nan])
        stream = next(iter(st["streams"].values()))
        report[d.transport] = {
            "rss_mb_first": round(d.samples[0][1], 1), "rss_mb_last": round(d.samples[-1][1], 1),
            "rss_slope_mb_per_hour_second_half": round(slope_mb_per_hour(d.samples), 2),
            "fds_first": d.samples[0][2], "fds_last": d.samples[-1][2], "fds_max": max(s[2] for s in d.samples),
            "reader_fps": round(r.frames / max(r.last - r.first, 1e-9), 2), "frames": r.frames,
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
            "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
            "reader_dropped": r.stats.dropped, "reader_torn": r.stats.torn, "reader_invalid": r.stats.invalid,
            "daemon_send_errors": st["publisher"].get("send_errors"),
            "daemon_poses_superseded": stream["poses_superseded"],
            "vmc_packets": st["receivers"].get("receivers", {}).get("vmc", {}).get("packets"),
            "samples": [(round(t, 1), round(rss, 1), fds) for t, rss, fds in d.samples]}
    for tr in ("shm", "inline"):
        rep = {k: v for k, v in report[tr].items() if k != "samples"}
        print(f"{tr}: " + ", ".join(f"{k} {v}" for k, v in rep.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()

"""Godot 3 addon benchmark: frames/s the Tha4FrameClient receives and ms per frame it spends decoding
(parse + decode + texture upload), for raw RGBA, PNG and WebP, in godot3-server headless.

    python benchmarks/bench_godot.py [--seconds 5] [--student demo]

A real daemon subprocess with --http on 127.0.0.1; a thread changes the pose every 10 ms (as a tracker
would) so that frames keep coming; each format is watched by the addon's own tool (tools/watch.gd, one
godot3-server process) for --seconds. "render fps" is the daemon's own rate over the same seconds (its
stats), the most a client can receive; "skipped" counts frames drained but replaced by a newer one
before being shown (the client decodes only the newest each main-loop pass).

Then the client's own ceiling: a Python WebSocket server in this process (aiohttp, the daemon's message
encoding from tha4bridge.web.feed) sends the same pre-encoded frame again and again, each as soon as the
previous one is written, so the numbers measure Godot, not the renderer: frames/s taken off the socket
(shown + skipped) and shown, and decode ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ run from the checkout
from benchmarks.bench_transport import start_daemon  # noqa: E402
from benchmarks.machine import cpu_name  # noqa: E402
from tha4bridge.client import Control, FrameSubscriber  # noqa: E402
from tha4bridge.pose import NEUTRAL  # noqa: E402
from tha4bridge.web.feed import Frame, encode  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1] / "godot_sample" / "godot3"


def pusher(control: str, stop: threading.Event) -> None:
    ctl, i = Control(control, timeout=5.0), 0
    while not stop.wait(0.01):
        i += 1
        ctl.request("set_pose", pose={"mouth_aaa": (i % 10) / 10, "head_x": (i % 7) / 7 - 0.5}, hold=0)
    ctl.close()


class Firehose:
    """/ws/frames/demo at full speed: one frame the daemon rendered, encoded once per format, resent forever."""

    def __init__(self, pixels):
        from aiohttp import web

        header = {"proto": 1, "stream": "demo", "seq": 0, "width": 512, "height": 512, "stride": 2048,
                  "format": "rgba8", "alpha": "straight", "pose": [float(v) for v in NEUTRAL]}
        frame = Frame(header, pixels)
        self.messages = {fmt: encode(frame, fmt) for fmt in ("rgba", "png", "webp")}
        self.port = 0  # until the server is up: then the port the OS chose
        self.loop = asyncio.new_event_loop()
        self.web = web
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        if not started.wait(10):
            raise RuntimeError("the firehose's web server did not start within 10 s")

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = self.web.Application()
        app.router.add_get("/ws/frames/demo", self._frames)
        runner = self.web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(self.web.TCPSite(runner, "127.0.0.1", 0).start())
        self.port = runner.addresses[0][1]
        started.set()
        self.loop.run_forever()

    async def _frames(self, request):
        ws = self.web.WebSocketResponse()
        await ws.prepare(request)
        message = self.messages[request.query.get("format", "rgba")]
        try:
            while not ws.closed:
                await ws.send_bytes(message)  # returns once the bytes are handed to the socket
        except (ConnectionError, RuntimeError):
            pass
        return ws


def watch(godot: str, port: int, fmt: str, seconds: float) -> dict:
    cmd = [godot, "--path", str(PROJECT), "-s", "res://addons/tha4bridge/tools/watch.gd",
           f"url=ws://127.0.0.1:{port}/ws/frames/demo", f"format={fmt}", f"seconds={seconds}"]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                          env={**os.environ, "LANG": "en_US.UTF-8"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    summary = [e for e in events if e["event"] == "summary"]
    if done.returncode != 0 or not summary or not summary[0]["frames"]:
        raise RuntimeError(f"watch.gd ({fmt}) gave no frames:\n{done.stdout}{done.stderr}")
    # Godot's own CPU time, start-up included: on a shared machine a truer cost than the wall clock
    summary[0]["cpu_s"] = (after.ru_utime + after.ru_stime) - (used.ru_utime + used.ru_stime)
    return summary[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per format")
    ap.add_argument("--student", default="demo", help="what the daemon renders (default: the demo character)")
    args = ap.parse_args()
    godot = shutil.which("godot3-server")
    if godot is None:
        sys.exit("godot3-server is not installed (apt-get install godot3-server): nothing to measure")
    d = start_daemon(args.student, http=True)  # its web side on an OS-chosen port, read from its banner
    ctl, port = d.ctl, d.port
    with FrameSubscriber(d.frames) as sub:  # a real frame (random pixels would not compress)
        picture = None
        while picture is None:
            picture = sub.recv(timeout=10)
    pixels = picture.pixels
    stop = threading.Event()
    thread = threading.Thread(target=pusher, args=(d.control, stop), daemon=True)
    thread.start()
    rows = []
    try:
        for fmt in ("rgba", "png", "webp"):
            before = ctl.stats()["streams"]
            summary = watch(godot, port, fmt, args.seconds)
            after = ctl.stats()["streams"]
            name = next(iter(after))
            frames = after[name]["frames"] - before[name]["frames"]
            rows.append((fmt, frames / args.seconds, summary))
    finally:
        stop.set()
        thread.join(5)
        d.stop()
    version = subprocess.run([godot, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{args.student} in godot3-server {version} headless, {cpu_name()}, {os.cpu_count()} cores, "
          f"{args.seconds:.0f} s per format")
    print(f"{'format':7} {'render fps':>10} {'received fps':>12} {'decode ms p50':>13} {'p99':>6} {'skipped':>7} "
          f"{'godot cpu %':>11}")
    for fmt, render_fps, s in rows:
        print(f"{fmt:7} {render_fps:10.1f} {s['fps']:12.1f} {s['decode_ms']['p50']:13.2f} "
              f"{s['decode_ms']['p99']:6.2f} {s['skipped']:7d} {100 * s['cpu_s'] / args.seconds:11.0f}")
    hose = Firehose(pixels)
    print("the client's ceiling (a Python server resending one frame as fast as Godot takes it):")
    print(f"{'format':7} {'bytes':>8} {'taken fps':>10} {'shown fps':>10} {'poll ms/frame':>13} "
          f"{'cpu ms/frame':>12} {'decode ms p50':>13} {'p99':>6}")
    for fmt in ("rgba", "png", "webp"):
        s = watch(godot, hose.port, fmt, args.seconds)
        taken = s["frames"] + s["skipped"]
        print(f"{fmt:7} {len(hose.messages[fmt]):8d} {taken / s['seconds']:10.1f} {s['fps']:10.1f} "
              f"{s['poll_ms'] / taken:13.2f} {1000 * s['cpu_s'] / taken:12.2f} {s['decode_ms']['p50']:13.2f} "
              f"{s['decode_ms']['p99']:6.2f}")


if __name__ == "__main__":
    main()

"""Thirty frames a second on two cores? Three sessions replayed through the daemon's real scheduler, renderer and
body worker (in process, no sockets: the frame sink publishes on an inproc ZeroMQ endpoint), each twice:

  two rates   fast mode as `serve` runs it: compose passes at --fps from body keys, body passes on their thread
  baseline    fast mode with one whole render per frame (what `serve --mode fast` did before two rates),
              measured in the same run

  (a) chat avatar  no tracker; the idle breathing, blinks and sway; an expression every 3 s; talking half the time
  (b) game NPC     set_pose holds (head and face) every 2.5 s and expression fades; no sway
  (c) VTuber       a 60 Hz tracker: head turns of up to 90°/s between pauses, blinks, talking

For each: frames shown per second, the latency from a pose's arrival (a command, a tracker packet) to the first
frame that shows it, and the PSNR of every 5th shown frame against the exact render of the pose its header claims
(min and median) on premultiplied 8-bit RGBA, what a viewer sees composited (straight alpha's colour under a
near-zero alpha is invisible and would amplify rounding: bf16 fast read 33 dB that way, 50 dB premultiplied). Warm-up (mask calibration,
the first frames) is excluded: each session starts after it.

    python benchmarks/bench_realtime.py [--student DIR] [--seconds 20] [--sessions abc] [--fps 30]
"""
from __future__ import annotations

import argparse
import bisect
import math
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tha4bridge.animator import Animator, MotionConfig  # noqa: E402
from tha4bridge.daemon.bodyworker import BodyWorker  # noqa: E402
from tha4bridge.daemon.framepose import FramePoses  # noqa: E402
from tha4bridge.daemon.scheduler import Pacing, RenderScheduler  # noqa: E402
from tha4bridge.daemon.services import Streams  # noqa: E402
from tha4bridge.daemon.streams import StreamRegistry  # noqa: E402
from tha4bridge.expressions import load_library  # noqa: E402
from tha4bridge.imaging import to_rgba8  # noqa: E402
from tha4bridge.layers import Look  # noqa: E402
from tha4bridge.pose import INDEX, NEUTRAL  # noqa: E402
from tha4bridge.student import StudentPoser  # noqa: E402
from tha4bridge.student.arithmetic import cpu_bf16_native  # noqa: E402
from tha4bridge.trackers import TrackerConfig, TrackerHub  # noqa: E402
from tha4bridge.transport.sink import FrameSink  # noqa: E402

FIXTURE = ROOT.parent / "shared" / "fixtures" / "tha4" / "students" / "lambda_00"
NAME = "s"


class Recorder:
    """A frame-sink listener (transport/sink.py's contract): every header, and the pixels of every `every`-th."""

    def __init__(self, every: int):
        self.every, self.headers, self.pixels = every, [], {}

    def watchers(self) -> int:
        return 1  # a viewer: the scheduler renders at full rate

    def on_frame(self, header: dict, pixels: np.ndarray) -> None:
        if len(self.headers) % self.every == 0:
            self.pixels[len(self.headers)] = pixels.copy()
        self.headers.append(header)


class Pipeline:
    """The daemon's render path for one stream, without its sockets (daemon.py composes the same parts)."""

    def __init__(self, poser, hub, animator: Animator, fps: float | None):
        self.ctx = zmq.Context()
        self.sink = FrameSink(f"inproc://bench-realtime-{id(self)}", "inline", context=self.ctx)
        self.recorder = Recorder(5)
        lock = threading.Lock()
        self.registry = StreamRegistry(self.sink, "cpu", "fast", lock)
        poses = FramePoses(animator, hub)
        self.scheduler = RenderScheduler(self.registry, self.sink, poses, Pacing(fps, idle_fps=fps or 30.0))
        self.streams = Streams(self.registry, self.sink, poses, self.scheduler.wake.set)
        self.worker = BodyWorker(self.registry.all, lambda s, t: poses.predict(s, t, lock))
        if hub is not None:
            hub.add_listener(self.scheduler.on_tracked)
        self.stream = self.registry.add(NAME, "bench", poser, "premultiplied")
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.scheduler.run, args=(self.stop,), daemon=True),
                        threading.Thread(target=self.worker.run, args=(self.stop,), daemon=True)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def record(self) -> None:
        """From now on, record frames (the warm-up's are left out)."""
        self.sink.listeners.append(self.recorder)

    def close(self) -> None:
        self.stop.set()
        self.scheduler.wake.set()
        for t in self.threads:
            t.join(30)
        self.sink.close()
        self.ctx.destroy(linger=0)


# --- sessions: each a driver run on the main thread, returning the arrival times of its poses --------------------
def chat_avatar(p: Pipeline, seconds: float, rng: random.Random) -> list[float]:
    looks = [n for n in load_library() if n != "neutral"]
    events, t0 = [], time.time()
    step = 0
    while time.time() - t0 < seconds:
        if step % 2 == 0:  # every 3 s an expression; talking on for 3 s, off for 3 s
            name = looks[(step // 2) % len(looks)]
            lib = load_library()
            look = Look.of(name, lib[name], 1.0)
            events.append(p.streams.change_layers([NAME], lambda layers, now: layers.expression.set(look, 0.3, None, now)))
        on = (step // 2) % 2 == 0
        events.append(p.streams.change_layers([NAME], lambda layers, now, on=on: layers.talking.talk(on, now)))
        step += 1
        time.sleep(max(0.0, 1.5 * step - (time.time() - t0)))
    return events


def game_npc(p: Pipeline, seconds: float, rng: random.Random) -> list[float]:
    looks = [n for n in load_library() if n != "neutral"]
    lib = load_library()
    events, t0, k = [], time.time(), 0
    while time.time() - t0 < seconds:
        values = {"head_x": rng.uniform(-0.4, 0.4), "head_y": rng.uniform(-0.5, 0.5), "neck_z": rng.uniform(-0.3, 0.3),
                  "mouth_aaa": rng.choice([0.0, 0.3, 0.8]), "eye_wink_left": rng.choice([0.0, 0.0, 1.0])}
        p.streams.set_pose([NAME], values, hold=0.0, replace=False)
        events.append(time.time())
        if k % 2 == 1:
            name = looks[k % len(looks)]
            look = Look.of(name, lib[name], rng.uniform(0.5, 1.0))
            events.append(p.streams.change_layers([NAME], lambda layers, now: layers.expression.set(look, 0.6, None, now)))
        k += 1
        time.sleep(max(0.0, 2.5 * k - (time.time() - t0)))
    return events


def head_path(seconds: float, rng: random.Random, hz: float = 60.0) -> np.ndarray:
    """[N, 3] (head_x, head_y, neck_z) at `hz`: pauses of 0.6–2 s (jitter of a still head) and minimum-jerk turns
    whose peak speed stays ≤ 9 units/s (90°/s at the default 10° of yaw per unit)."""
    n = int(seconds * hz) + 1
    out = np.zeros((n, 3), np.float32)
    cur, i = np.zeros(3), 0
    while i < n:
        pause = int(rng.uniform(0.6, 2.0) * hz)
        for j in range(i, min(n, i + pause)):
            out[j] = cur + np.array([rng.gauss(0, 0.004) for _ in range(3)])
        i += pause
        target = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.9, 0.9), rng.uniform(-0.3, 0.3)])
        dist = float(np.abs(target - cur).max())
        dur = max(0.25, 1.875 * dist / 9.0)  # minimum jerk: peak speed 1.875·distance/duration
        m = int(dur * hz)
        for j in range(m):
            if i + j >= n:
                break
            u = (j + 1) / m
            out[i + j] = cur + (target - cur) * (10 * u ** 3 - 15 * u ** 4 + 6 * u ** 5)
        i += m
        cur = target
    return out


def vtuber(p: Pipeline, seconds: float, rng: random.Random, hub: TrackerHub) -> list[float]:
    hz = 60.0
    path = head_path(seconds, rng, hz)
    events, t0 = [], time.time()
    blink_at = rng.uniform(1, 4)
    for k, (hx, hy, nz) in enumerate(path):
        t = k / hz
        pose = NEUTRAL.copy()
        pose[INDEX["head_x"]], pose[INDEX["head_y"]], pose[INDEX["neck_z"]] = hx, hy, nz
        pose[INDEX["body_y"]], pose[INDEX["body_z"]] = hy, nz  # body follows the head (official 1.0)
        if (t % 6.0) < 3.0:  # talking half the time: the tracker's mouth opens and closes ~5 times a second
            pose[INDEX["mouth_aaa"]] = max(0.0, math.sin(2 * math.pi * 5 * t)) * 0.9
        if blink_at <= t < blink_at + 0.2:
            pose[INDEX["eye_wink_left"]] = pose[INDEX["eye_wink_right"]] = math.sin(math.pi * (t - blink_at) / 0.2)
        elif t >= blink_at + 0.2:
            blink_at = t + rng.uniform(2, 5)
        now = time.time()
        hub._publish("vmc", np.clip(pose, -1, 1).astype(np.float32), now, now)  # what a receiver does per packet
        events.append(now)
        time.sleep(max(0.0, (k + 1) / hz - (time.time() - t0)))
    return events


# --- measuring ------------------------------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def summarize(rec: Recorder, events: list[float], seconds: float, exact: StudentPoser) -> dict:
    hs = rec.headers
    starts = [h["t_render_start"] for h in hs]
    lat = []
    for e in events:
        i = bisect.bisect_left(starts, e)
        if i < len(hs):
            lat.append((hs[i]["t_published"] - e) * 1000)
    scores = []
    for i, px in rec.pixels.items():
        ref = exact.render(np.asarray(hs[i]["pose"], np.float32))
        ref8 = to_rgba8(ref, premultiplied=True)[0].numpy()
        scores.append(psnr(px, ref8))
    made = Counter(h.get("body", {}).get("made", "whole") for h in hs)
    held = sum(1 for h in hs if h.get("body", {}).get("held"))
    return {"fps": len(hs) / seconds, "lat50": float(np.percentile(lat, 50)) if lat else math.nan,
            "lat95": float(np.percentile(lat, 95)) if lat else math.nan,
            "psnr_min": min(scores) if scores else math.nan,
            "psnr_med": float(np.median(scores)) if scores else math.nan, "made": dict(made), "n": len(hs),
            "held": held / len(hs) if hs else math.nan}


def run(session: str, two_rate: bool, student: Path, seconds: float, fps: float, exact: StudentPoser, seed: int,
        strategy: str = "hold") -> dict:
    rng = random.Random(seed)
    animator = Animator(MotionConfig(seed=seed), t0=time.time())
    hub = None
    if session in "ac":
        hub = TrackerHub(TrackerConfig(vmc_port=None, ifm_port=None, osc_param_port=None,
                                       calibration_file=str(Path("/tmp") / "bench-realtime-calibration.json")),
                         animator=animator)
    poser = StudentPoser(student, device="cpu", mode="fast", two_rate=two_rate)
    poser.renderer.calibrate_mask()  # the steady state: calibration is not part of a session
    p = Pipeline(poser, hub, animator, fps if two_rate else None)
    p.scheduler.tracked_strategy = strategy  # the body strategy of tracked frames (session c)
    p.start()
    warm = time.time()
    while two_rate and len(p.stream.bodies) < 3 and time.time() - warm < 60:
        time.sleep(0.1)  # the first key and breathing's pair exist before the session starts
    time.sleep(1.0)
    p.record()
    t0 = time.time()
    if session == "a":
        events = chat_avatar(p, seconds, rng)
    elif session == "b":
        events = game_npc(p, seconds, rng)
    else:
        events = vtuber(p, seconds, rng, hub)
    took = time.time() - t0
    p.sink.listeners.remove(p.recorder)
    passes = dict(p.stream.stats.body_passes)
    body_ms = list(p.stream.stats.body_ms)
    p.close()
    out = summarize(p.recorder, events, took, exact)
    out["passes"] = passes
    out["body_ms"] = float(np.median(body_ms)) if body_ms else math.nan
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", type=Path, default=FIXTURE)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--sessions", default="abc")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--strategies", default="hold",
                    help="comma-separated body strategies of tracked frames (bodytrack.STRATEGIES), each a "
                         "two-rate row of session c")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the render thread (default: every core)")
    a = ap.parse_args()
    if not a.student.is_dir():
        sys.exit(f"no student folder at {a.student} (pass --student DIR)")
    import os
    torch.set_num_threads(a.threads or os.cpu_count() or 2)
    caps = torch.cpu.get_capabilities()
    native, why = cpu_bf16_native()
    print(f"CPU: {caps.get('cpu_name', '?')} ({os.cpu_count()} cores), native bfloat16: {'yes' if native else 'no'} ({why})")
    print(f"student: {a.student.name}; {a.seconds:.0f} s per session; torch threads {torch.get_num_threads()}; "
          f"two rates at --fps {a.fps:g}; PSNR every 5th shown frame vs the exact render of its header's pose\n")
    exact = StudentPoser(a.student, device="cpu", mode="exact")
    names = {"a": "chat avatar", "b": "game NPC", "c": "VTuber (60 Hz tracker)"}
    print(f"{'session':24s} {'arm':11s} {'fps':>5s} {'×base':>6s} {'latency p50/p95 ms':>19s} "
          f"{'PSNR min/median dB':>19s}  body (frames by how made; passes)")
    for session in a.sessions:
        base = None
        arms = [(False, "")] + [(True, st) for st in (a.strategies.split(",") if session == "c" else ["extrapolate"])]
        for two_rate, strategy in arms:
            r = run(session, two_rate, a.student, a.seconds, a.fps, exact, a.seed, strategy or "hold")
            base = base or r
            ratio = r["fps"] / base["fps"] if base["fps"] else math.nan
            body = "" if not two_rate else (f"{r['made']}; head held back in {100 * r['held']:.0f} % of frames; "
                                            f"passes {r['passes']} at {r['body_ms']:.0f} ms")
            arm = "baseline" if not two_rate else ("two rates" if session != "c" else strategy[:11])
            print(f"{names[session]:24s} {arm:11s} {r['fps']:5.1f} "
                  f"{ratio:6.2f} {r['lat50']:9.0f} / {r['lat95']:6.0f} {r['psnr_min']:9.1f} / {r['psnr_med']:6.1f}  {body}",
                  flush=True)


if __name__ == "__main__":
    main()

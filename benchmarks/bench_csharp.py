"""How fast the Unity package's C# client gets the newest 512x512 RGBA frame (Mono, this machine).

    python benchmarks/bench_csharp.py [--seconds 3] [--copies 2000]

Python plays the daemon's transport with the daemon's own frame sink (tha4bridge.transport.sink.FrameSink:
the same rings, publisher and header) publishing pre-rendered frames as fast as it can, so the numbers
measure the client, not the renderer. Measured in the same run:
  1. copy: FrameRing.TryCopy with the row flip (what Unity gets) vs two baselines, the same copy
     without flip and MemoryMappedViewAccessor.ReadArray; the goal is shm >= 1000 frames/s;
  2. sustained shm: FrameClient.TryGetLatestFrame (notification + seqlock copy + flip) vs the writer;
  3. sustained inline: the same with the pixels inside the ZeroMQ message.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.unity.csharp_build
from tests.unity.csharp_build import MISSING, SKIP_REASON, build_core, mcs  # noqa: E402

from tha4bridge.pose import NEUTRAL  # noqa: E402
from tha4bridge.transport.sink import FrameSink, FrameTimes  # noqa: E402

W = H = 512
BENCH = Path(__file__).resolve().parent / "csharp" / "Bench.cs"


def frames(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (H, W, 4), dtype=np.uint8) for _ in range(n)]


class Writer:
    """Publishes frames unthrottled (or paced) in the daemon's wire format until stopped."""

    def __init__(self, transport: str, pictures: list[np.ndarray]):
        self.transport, self.pictures = transport, pictures
        self.name = f"bench{transport}"
        self.sink = FrameSink("tcp://127.0.0.1:0", transport)  # an OS-chosen port (.endpoint says which)
        self.sink.open(self.name, W, H, "straight")
        self.seq = 0
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def endpoint(self) -> str:
        return self.sink.endpoint

    @property
    def ring_path(self) -> str:
        return self.sink.describe(self.name)["path"]

    def publish_one(self) -> None:
        pixels = self.pictures[self.seq % len(self.pictures)]  # never modified: ZeroMQ may hold them (inline)
        now = time.time()
        self.seq, _ = self.sink.publish(self.name, pixels, NEUTRAL, "idle", FrameTimes(now, now, now))

    def _run(self) -> None:
        while not self.stop.is_set():
            self.sink.poll_subscriptions()
            if self.paused.is_set():
                time.sleep(0.005)
                continue
            self.publish_one()

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        self.sink.close()


def run(exe: Path, *args: str) -> dict:
    out = subprocess.run(["mono", str(exe), *args], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"bench program failed: {out.stdout}{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each sustained run")
    ap.add_argument("--copies", type=int, default=2000, help="copies per variant in the copy benchmark")
    args = ap.parse_args()
    if MISSING:
        raise SystemExit(SKIP_REASON)

    out = Path(tempfile.mkdtemp(prefix="bench_csharp_"))
    core = build_core(out)
    exe = out / "Bench.exe"
    mcs(exe, [BENCH], refs=[core], target="exe")
    pictures = frames()

    # 1. Copy cost on a ring filled once (writer idle, so each slot holds a known frame).
    shm = Writer("shm", pictures)
    for _ in range(len(pictures)):
        shm.publish_one()
    copy = run(exe, "copy", shm.ring_path, str(args.copies))["copy"]
    assert copy["ok_plain"] == copy["ok_flip"] == copy["n"], copy

    # 2. Sustained shm with the writer unthrottled.
    shm.thread.start()
    t0, s0 = time.perf_counter(), shm.seq
    sustained_shm = run(exe, "sustained", shm.endpoint, str(args.seconds))["sustained"]
    writer_shm_fps = (shm.seq - s0) / (time.perf_counter() - t0)
    shm.close()

    # 3. Sustained inline.
    inline = Writer("inline", pictures)
    inline.thread.start()
    t0, s0 = time.perf_counter(), inline.seq
    sustained_inline = run(exe, "sustained", inline.endpoint, str(args.seconds))["sustained"]
    writer_inline_fps = (inline.seq - s0) / (time.perf_counter() - t0)
    inline.close()

    flip_fps = 1e6 / copy["flip_us"]
    print(f"C# client (Mono {subprocess.run(['mono', '--version'], capture_output=True, text=True).stdout.split()[4]}), "
          f"512x512 RGBA frames ({W * H * 4 / 2**20:.0f} MiB)")
    print("1. newest frame from shm, per copy (FrameRing.TryCopy, seqlock checked, 4 slots rotating):")
    print(f"   copy + row flip (what Unity gets)  {copy['flip_us']:8.1f} us  = {flip_fps:8.0f} frames/s"
          f"   goal >= 1000: {'MET' if flip_fps >= 1000 else 'MISSED'}")
    print(f"   baseline: plain copy, no flip      {copy['plain_us']:8.1f} us  -> flip costs x{copy['flip_us'] / copy['plain_us']:.2f}")
    print(f"   baseline: ReadArray<byte>          {copy['read_array_us']:8.1f} us  -> pointer copy + flip is "
          f"x{copy['read_array_us'] / copy['flip_us']:.0f} faster (n={copy['read_array_n']})")
    for name, s, writer_fps in (("shm", sustained_shm, writer_shm_fps), ("inline", sustained_inline, writer_inline_fps)):
        print(f"2. sustained {name:6s}: writer sent {writer_fps:7.0f} frames/s (never blocks; ZeroMQ drops beyond SNDHWM); "
              f"client delivered {s['fps']:7.0f} newest frames/s (ratio {s['fps'] / writer_fps:.2f}), "
              f"client CPU {s['client_cpu_us_per_frame']:.0f} us/frame, "
              f"skipped {s['skipped']}, torn {s['torn']}, overwritten {s['overwritten']}, "
              f"publish->delivered latency p50 {s['latency_ms_p50']:.2f} ms p99 {s['latency_ms_p99']:.2f} ms")
    print(f"   inline vs shm delivered frames/s: x{sustained_inline['fps'] / sustained_shm['fps']:.2f}; "
          f"client CPU per frame inline/shm: x{sustained_inline['client_cpu_us_per_frame'] / sustained_shm['client_cpu_us_per_frame']:.2f}")


if __name__ == "__main__":
    main()

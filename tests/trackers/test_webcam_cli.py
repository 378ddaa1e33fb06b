"""The commands end to end, as a user runs them: `track VIDEO --out poses.json` then `render` with its
output; `serve --webcam VIDEO` driving a real daemon's frames; `trackers --webcam VIDEO`."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from tha4bridge.client import FrameSubscriber
from tha4bridge.pose import INDEX
from tests.daemon.util import Served
from tests.trackers.webcam_util import astronaut_bgr, face_model, moved, write_video

CLI = [sys.executable, "-m", "tha4bridge.cli"]
NECK_Z = INDEX["neck_z"]


@pytest.fixture(scope="module")
def model():
    return face_model()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, model):
    d = tmp_path_factory.mktemp("clips")
    img = astronaut_bgr()
    short = write_video(d / "short.avi", [moved(img, a) for a in (0.0, 5.0, 10.0)])
    sway = 20.0 * np.sin(np.linspace(0.0, 6.0 * np.pi, 120))  # 4 s at 30 frames/s, three swings
    swaying = write_video(d / "sway.avi", [moved(img, a) for a in sway])
    data = swaying.read_bytes()
    (d / "cut.avi").write_bytes(data[: len(data) // 3])
    return {"short": short, "sway": swaying, "cut": d / "cut.avi", "dir": d}


def run(*args, timeout=120):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def invoke(*args):
    """A command in this process (typer's runner): no interpreter start-up, stdout and stderr apart."""
    from typer.testing import CliRunner

    from tha4bridge.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_track_then_render(clips, model, tmp_path):
    out = tmp_path / "poses.json"
    done = run("track", clips["short"], "--out", out, "--face-model", model)  # a real process: its stderr whole
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote 3 poses to {out} (3 with a face)"
    assert done.stderr == ""  # no progress bar off a terminal, no MediaPipe start-up chatter
    frames = json.loads(out.read_text())["frames"]
    assert [f["t"] for f in frames] == pytest.approx([0.0, 1 / 30, 2 / 30], abs=2e-3)
    # the head's crop: the same pixels as whole frames (render's --region), a quarter of the cost
    done = invoke("render", "--poses", out, "--out", tmp_path / "frames", "--device", "cpu", "--region", "160,48,192,192")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["0000.png", "0001.png", "0002.png"]


def test_track_bad_input_is_one_line(clips, model, tmp_path):
    done = invoke("track", clips["cut"], "--out", tmp_path / "cut.json", "--face-model", model)
    assert done.exit_code == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"warning: {clips['cut']}: ends at frame ") and "of 120 (the file is truncated or corrupt)" in line
    assert (tmp_path / "cut.json").exists() and done.stdout.startswith("wrote ")
    done = invoke("track", tmp_path / "absent.mp4", "--out", tmp_path / "x.json", "--face-model", model)
    assert done.exit_code == 2 and done.stderr.strip() == f"error: {tmp_path / 'absent.mp4'}: no such video file"
    done = invoke("track", clips["short"], "--out", tmp_path / "x.json", "--face-model", tmp_path / "absent.task")
    assert done.exit_code == 2 and done.stderr.strip().endswith("face model not found (--face-model names a "
                                                                 "face_landmarker.task file)")


def test_trackers_webcam_shows_the_video_source(clips, model):
    done = run("trackers", "--vmc-port", "0", "--ifm-port", "0", "--seconds", "2.2", "--webcam", clips["sway"],
               "--face-model", model)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("listening: ") and "webcam: sway.avi" in lines[0]
    assert any(ln.startswith("[webcam] ") and "webcam (open): " in ln and "with a face" in ln for ln in lines[1:]), lines


@pytest.mark.slow
def test_serve_webcam_video_drives_the_frames(clips, model, tmp_path):
    d = Served("--webcam", str(clips["sway"]), "--face-model", str(model), "--idle-fps", "5",
               log_dir=tmp_path, trackers=True)
    try:
        neck = []
        with FrameSubscriber(d.frames) as sub:
            end = time.monotonic() + 30
            while time.monotonic() < end and len(neck) < 12:
                f = sub.recv(timeout=2)
                if f is not None and f.header["pose_source"] == "tracker:webcam":
                    neck.append(f.header["pose"][NECK_Z])
            stats = d.ctl.call("stats")["receivers"]
        assert len(neck) >= 4, f"frames driven by the webcam: {len(neck)}\n{d.log.read_text()}"
        assert max(neck) - min(neck) > 0.3  # the sway reaches the rendered frames
        cam = stats["receivers"]["webcam"]
        assert cam["port"] == "sway.avi" and cam["accepted"] > 0 and cam["infer_ms"] > 0
        assert "webcam" not in d.hello["trackers"]  # hello lists UDP ports only
    finally:
        assert d.stop() == 0
    log = d.log.read_text()
    assert "webcam: tracking sway.avi at up to 30 frames/s" in log

"""Real MediaPipe on a real face (scikit-image's astronaut photograph), offline: videos made here with known
motion. The roll follows an in-plane rotation, translation and scale leave the head still, noise is no face
(and the hub goes idle), a truncated video says so in one line, a missing camera is retried, `track` writes a
pose file `render` reads."""
from __future__ import annotations

import json
import logging
import math
import time

import numpy as np
import pytest

from tha4bridge.pose import INDEX
from tha4bridge.posefile import read_pose_file
from tests.trackers.util import make_hub, wait_for
from tests.trackers.webcam_util import astronaut_bgr, face_model, moved, noise_frames, write_video

ANGLES = 20.0 * np.sin(np.linspace(0.0, 2.0 * np.pi, 24))  # counter-clockwise in the image, ±20°
N_ROLL, HEAD_X, HEAD_Y = INDEX["neck_z"], INDEX["head_x"], INDEX["head_y"]


@pytest.fixture(scope="module")
def model():
    return face_model()


@pytest.fixture(scope="module")
def img(model):
    return astronaut_bgr()


@pytest.fixture(scope="module")
def heads(model, img):
    """Head angles (X pitch, Y yaw, Z roll) per frame of each motion, from one FaceTracker in video mode."""
    import cv2

    from tha4bridge.trackers.webcam import FaceTracker

    r = np.linspace(0.0, 2.0 * np.pi, 24)
    motions = {  # smooth motion, a few pixels a frame: a jump of a fifth of the face loses the track for a frame
        "still": [moved(img)] * 4,
        "rotation": [moved(img, a) for a in ANGLES],
        "translation": [moved(img, shift=(20 * math.sin(a), 14 * math.sin(2 * a))) for a in r],
        "scale": [moved(img, scale=s) for s in 1.0 + 0.25 * np.sin(r[::2])],
    }
    out, t = {}, 0.0
    with FaceTracker(model) as tracker:
        for name, frames in motions.items():
            got = []
            for f in frames:
                t += 33.0
                face = tracker.detect(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), t)
                got.append(None if face is None else face[1])
            out[name] = got
    return out


def test_the_photograph_is_a_face_looking_at_the_camera(heads):
    assert all(h is not None for h in heads["still"])
    pitch, yaw, roll = heads["still"][-1]
    assert abs(yaw) < 10 and abs(roll) < 10 and abs(pitch) < 25, heads["still"][-1]


def test_roll_follows_an_in_plane_rotation(heads):
    got = heads["rotation"]
    assert all(h is not None for h in got), "a face in every rotated frame"
    roll = np.array([h[2] for h in got]) - heads["still"][-1][2]
    r = np.corrcoef(roll, ANGLES)[0, 1]
    slope = np.polyfit(ANGLES, roll, 1)[0]
    # counter-clockwise in the image tilts the head toward the person's own right: +Z, as iFacialMocap sends
    assert r > 0.97 and 0.7 < slope < 1.3, (r, slope, roll.round(1).tolist())
    big = np.abs(ANGLES) > 8
    assert (np.sign(roll[big]) == np.sign(ANGLES[big])).all()
    for h in got:  # the rotation stays in the image plane: pitch and yaw barely move
        assert abs(h[1] - heads["still"][-1][1]) < 6


@pytest.mark.parametrize("motion", ["translation", "scale"])
def test_translation_and_scale_leave_the_head_still(heads, motion):
    got = heads[motion]
    assert all(h is not None for h in got), f"a face in every frame of the {motion}"
    a = np.array(got) - np.array(heads["still"][-1])
    # Against ±20° of rotation above: roll a degree on average (one frame of a few), pitch and yaw a few
    # degrees at most (a face off the camera's axis is seen a little from the side).
    assert np.abs(a[:, 2]).mean() < 1.5 and np.abs(a[:, 2]).max() < 5.0, a.round(1).tolist()
    assert np.abs(a).max() < 6.0, a.round(1).tolist()


@pytest.fixture(scope="module")
def videos(tmp_path_factory, img, model):
    d = tmp_path_factory.mktemp("videos")
    rotation = write_video(d / "rotation.avi", [moved(img, a) for a in ANGLES])
    noise = write_video(d / "noise.avi", noise_frames(10))
    whole = write_video(d / "whole.avi", [moved(img, a) for a in np.linspace(-10, 10, 30)])
    truncated = d / "truncated.avi"
    data = whole.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 5])
    return {"rotation": rotation, "noise": noise, "truncated": truncated, "dir": d}


def test_track_writes_a_pose_file_with_times_that_follows_the_roll(videos, model):
    from tha4bridge.trackers.video_poses import track_video

    out = videos["dir"] / "rotation.json"
    result = track_video(videos["rotation"], out, model=str(model), progress=False)
    assert (result.frames, result.faces, result.problem) == (24, 24, None)
    doc = json.loads(out.read_text())
    times = [f["t"] for f in doc["frames"]]
    assert times[0] == 0.0 and np.allclose(np.diff(times), 1 / 30, atol=2e-3)
    assert all(f["face"] for f in doc["frames"])
    poses = read_pose_file(out)  # the reader `render` uses
    assert poses.shape == (24, 45)
    neck = poses[:, N_ROLL]
    assert np.corrcoef(neck[4:], ANGLES[4:])[0, 1] > 0.9  # the first frames ease in from idle (ease_in)
    assert neck[ANGLES.argmax()] > 0.5 and neck[ANGLES.argmin()] < -0.5
    assert np.ptp(poses[:, INDEX["breathing"]]) > 0  # breathing from the animator, as serve adds it


def test_a_video_of_noise_is_no_face_then_idle(videos, model, tmp_path):
    from tha4bridge.trackers.hub import TrackerConfig
    from tha4bridge.trackers.video_poses import idle_animator, track_video

    out = tmp_path / "noise.json"
    result = track_video(videos["noise"], out, model=str(model), progress=False, breathing=False)
    assert (result.frames, result.faces) == (10, 0)
    doc = json.loads(out.read_text())
    assert not any(f["face"] for f in doc["frames"])
    idle = idle_animator(TrackerConfig().settings().idle)  # the same clock and sway: every pose is the idle pose
    for f, row in zip(doc["frames"], read_pose_file(out)):
        assert np.allclose(row, idle.idle_pose(f["t"]), atol=1e-4)


def test_a_truncated_video_gives_one_line(videos, model, tmp_path):
    from tha4bridge.trackers.video_poses import track_video

    result = track_video(videos["truncated"], tmp_path / "t.json", model=str(model), progress=False)
    assert result.problem is not None and "\n" not in result.problem
    assert str(videos["truncated"]) in result.problem and "truncated or corrupt" in result.problem
    assert 0 < result.frames < 30 and f"of 30" in result.problem
    assert read_pose_file(tmp_path / "t.json").shape == (result.frames, 45)  # what was there is written


def test_not_a_video(tmp_path, model):
    from tha4bridge.trackers.video_poses import track_video

    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n")
    with pytest.raises(ValueError) as e:
        track_video(bad, tmp_path / "p.json", model=str(model), progress=False)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match="no such video file"):
        track_video(tmp_path / "absent.mp4", tmp_path / "p.json", model=str(model), progress=False)
    with pytest.raises(ValueError, match=r"\*\.json"):
        track_video(bad, tmp_path / "p.csv", model=str(model), progress=False)


# -- the live source in a hub --------------------------------------------------------------------------------
def _webcam_hub(tmp_path, source, model, **kw):
    from tha4bridge.trackers.webcam import WebcamConfig

    return make_hub(tmp_path, vmc_port=None, ifm_port=None, osc_param_port=None,
                    webcam=WebcamConfig(source=str(source), model=str(model), **kw))


def test_a_video_drives_the_hub_then_ends_in_one_line(videos, model, tmp_path, caplog):
    hub = _webcam_hub(tmp_path, videos["rotation"], model)
    seen = []
    hub.add_listener(lambda: seen.append(hub.current()))
    with caplog.at_level(logging.INFO, logger="tha4bridge.trackers"):
        with hub:
            assert hub.ports == {}  # no socket to list
            assert wait_for(lambda: hub.receivers["webcam"].state == "ended", timeout=10)
            st = hub.stats()["receivers"]["webcam"]
            assert wait_for(lambda: hub.current().source == "idle", timeout=3)  # lost after the end
    assert st["packets"] == 24 and st["accepted"] >= 10 and st["infer_ms"] > 0 and st["latency_ms"] > 0
    assert st["warnings"] == [f"{videos['rotation']}: the video ended after 24 frames"]
    assert {tp.source for tp in seen} == {"webcam"}
    neck = [tp.pose[N_ROLL] for tp in seen]
    assert max(neck) > 0.5 and min(neck) < -0.5
    ended = [r for r in caplog.records if "ended" in r.getMessage()]
    assert len(ended) == 1


def test_noise_is_no_face_and_the_hub_stays_idle(videos, model, tmp_path):
    hub = _webcam_hub(tmp_path, videos["noise"], model)
    with hub:
        assert wait_for(lambda: hub.receivers["webcam"].state == "ended", timeout=10)
        st = hub.stats()["receivers"]["webcam"]
        tp = hub.current()
    assert st["tracked"] > 0 and st["no_face"] == st["tracked"] and st["accepted"] == 0
    assert tp.source == "idle" and not tp.live and not st["live"]


def test_a_truncated_video_in_the_hub(videos, model, tmp_path, caplog):
    hub = _webcam_hub(tmp_path, videos["truncated"], model)
    with caplog.at_level(logging.WARNING, logger="tha4bridge.trackers"):
        with hub:
            assert wait_for(lambda: hub.receivers["webcam"].state == "failed", timeout=10)
            st = hub.stats()["receivers"]["webcam"]
    [line] = st["warnings"]
    assert "truncated or corrupt" in line and "of 30" in line
    assert [r.getMessage() for r in caplog.records] == [f"webcam: {line}"]


def test_a_missing_camera_is_retried_and_shows_as_lost(model, tmp_path, caplog):
    hub = _webcam_hub(tmp_path, "/dev/video97", model, retry=0.2)
    with caplog.at_level(logging.WARNING, logger="tha4bridge.trackers"):
        with hub:
            assert wait_for(lambda: hub.receivers["webcam"].opens >= 3, timeout=5)
            st = hub.stats()["receivers"]["webcam"]
            tp = hub.current()
    assert st["state"] in ("retrying", "stopped") and not st["live"] and tp.source == "idle"
    assert st["warnings"] and "cannot be opened" in st["warnings"][0] and "retrying every 0.2 s" in st["warnings"][0]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1, said  # said once, however often it is retried


def test_the_frame_rate_cap(videos, model, tmp_path):
    hub = _webcam_hub(tmp_path, videos["rotation"], model, fps=5.0)
    with hub:
        assert wait_for(lambda: hub.receivers["webcam"].state == "ended", timeout=10)
        st = hub.stats()["receivers"]["webcam"]
    # 24 frames played at 30 frames/s last 0.8 s: at 5 frames/s about 4 of them are tracked
    assert st["packets"] == 24 and 2 <= st["tracked"] <= 7, st


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def test_head_angles_decompose_yaw_pitch_roll():
    from tha4bridge.trackers.webcam import head_angles

    for pitch, yaw, roll in ((0, 0, 0), (12, 0, 0), (0, -25, 0), (0, 0, 18), (10, -20, 15), (-30, 40, -5)):
        m = np.eye(4)
        m[:3, :3] = 1.7 * _rot("y", yaw) @ _rot("x", pitch) @ _rot("z", roll)  # scaled: as MediaPipe's may be
        m[:3, 3] = (3.0, -2.0, -60.0)
        assert np.allclose(head_angles(m), (pitch, yaw, roll), atol=1e-6)
    # +pitch turns the nose (+z) down, +yaw toward +x (the image's right, the person's own left)
    nose = _rot("x", 10) @ (0, 0, 1)
    assert nose[1] < 0
    assert (_rot("y", 10) @ (0, 0, 1))[0] > 0


def test_an_unplugged_camera_is_said_once_and_retried(model, img, tmp_path, caplog, monkeypatch):
    """No camera here: OpenCV's capture is stood in for by one that delivers frames of the photograph, then
    stops as an unplugged camera's read does (False), then no longer opens; the rest is real (MediaPipe, hub)."""
    from tha4bridge.trackers import webcam

    class Unplugged:
        def __init__(self):
            self.left = 20

        def read(self):
            self.left -= 1
            time.sleep(1 / 30)
            return (True, moved(img)) if self.left >= 0 else (False, None)

        def get(self, prop):
            return 0.0

        def release(self):
            pass

    opened = []

    def fake_open(cv2, source):
        opened.append(source)
        return Unplugged() if len(opened) in (1, 3) else None  # plugged back in for the third try

    monkeypatch.setattr(webcam, "open_video", fake_open)
    hub = _webcam_hub(tmp_path, "0", model, retry=0.2)
    with caplog.at_level(logging.WARNING, logger="tha4bridge.trackers"):
        with hub:
            assert wait_for(lambda: hub.current().source == "webcam", timeout=5)
            assert wait_for(lambda: len(opened) >= 5, timeout=8)  # retried after each unplug
            st = hub.stats()["receivers"]["webcam"]
            assert wait_for(lambda: hub.current().source == "idle", timeout=3)
    assert st["accepted"] > 20 and st["state"] == "retrying"  # faces from both times it was plugged in
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    unplugged = "webcam: camera 0 stopped delivering frames (unplugged?); retrying every 0.2 s"
    absent = "webcam: camera 0 cannot be opened (absent, or busy in another program); retrying every 0.2 s"
    assert said == [unplugged, absent, unplugged, absent]  # each trouble once, again after the camera came back

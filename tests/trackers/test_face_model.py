"""The face model file: found, checked, downloaded (from a loopback server here: the tests never reach
Google), refused in one line when wrong, never hanging; and `--webcam` without the extra says what to install."""
from __future__ import annotations

import hashlib
import http.server
import io
import socket
import sys
import threading
import time
import zipfile
from contextlib import contextmanager

import pytest

from tha4bridge.trackers import face_model as fm
from tha4bridge.trackers.face_model import FaceModelError


def a_bundle() -> bytes:
    """A zip shaped like a face_landmarker.task (the three networks' names, dummy contents)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in fm.MEMBERS:
            z.writestr(name, b"tflite")
    return buf.getvalue()


@contextmanager
def serving(body: bytes | None, stall: float = 0.0):
    """A loopback HTTP server answering every GET with `body` (None: 404); `stall` s of silence midway."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if stall:
                time.sleep(stall)
            try:
                self.wfile.write(body[len(body) // 2:])
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    th = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/face_landmarker.task"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The default model path inside the test folder."""
    monkeypatch.setattr(fm, "DEFAULT_PATH", tmp_path / "cache" / "face_landmarker.task")
    return tmp_path / "cache" / "face_landmarker.task"


def test_download_is_checked_and_stored_atomically(home):
    body = a_bundle()
    with serving(body) as url:
        fm.fetch(url, home, progress=False, expected=hashlib.sha256(body).hexdigest())
    assert home.read_bytes() == body
    assert [p.name for p in home.parent.iterdir()] == [home.name]  # no temporary file left behind


def test_a_download_with_the_wrong_checksum_is_refused_and_not_stored(home):
    with serving(a_bundle()) as url:
        with pytest.raises(FaceModelError) as e:
            fm.resolve(None, url=url, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and fm.MODEL_SHA256 in msg and str(home) in msg
    assert not home.parent.exists() or list(home.parent.iterdir()) == []


def test_a_download_that_is_not_a_model_is_refused(home):
    body = b"<html>captive portal</html>"
    with serving(body) as url:
        with pytest.raises(FaceModelError, match="not a face model"):
            fm.fetch(url, home, progress=False, expected=hashlib.sha256(body).hexdigest())
    assert not home.exists()


def test_offline_says_the_url_the_sha256_and_where_to_put_it(home):
    with socket.socket() as s:  # a loopback port nobody listens on: refused at once, as without a network
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/face_landmarker.task"
    with pytest.raises(FaceModelError) as e:
        fm.resolve(None, url=url, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and fm.MODEL_SHA256 in msg and str(home) in msg and "--face-model" in msg
    with serving(None) as url:  # a 404
        with pytest.raises(FaceModelError, match="HTTP 404"):
            fm.resolve(None, url=url, progress=False)


def test_a_stalled_download_times_out(home):
    with serving(a_bundle(), stall=3.0) as url:
        t0 = time.monotonic()
        with pytest.raises(FaceModelError) as e:
            fm.resolve(None, url=url, timeout=0.5, progress=False)
        assert time.monotonic() - t0 < 2.5
    assert url in str(e.value) and not home.exists()


def test_the_cached_file_must_be_the_published_model(home):
    home.parent.mkdir(parents=True)
    home.write_bytes(a_bundle())
    with pytest.raises(FaceModelError) as e:
        fm.resolve(None, download=False)
    assert str(home) in str(e.value) and "is not the face model's" in str(e.value) and "\n" not in str(e.value)


def test_missing_without_download_names_the_url(home):
    with pytest.raises(FaceModelError) as e:
        fm.resolve(None, download=False)
    assert fm.MODEL_URL in str(e.value) and fm.MODEL_SHA256 in str(e.value) and str(home) in str(e.value)


def test_face_model_option_takes_any_bundle_but_refuses_other_files(tmp_path):
    own = tmp_path / "mine.task"
    own.write_bytes(a_bundle())
    assert fm.resolve(own) == own  # a model of one's own: not held to our checksum
    for name, data, words in (("notes.task", b"hello", "not a face model"),
                              ("other.zip", None, "lacks face_blendshapes.tflite")):
        p = tmp_path / name
        if data is None:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr("face_detector.tflite", b"x")
                z.writestr("face_landmarks_detector.tflite", b"x")
            data = buf.getvalue()
        p.write_bytes(data)
        with pytest.raises(FaceModelError) as e:
            fm.resolve(p)
        assert str(p) in str(e.value) and words in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(FaceModelError, match="face model not found"):
        fm.resolve(tmp_path / "absent.task")


def test_mediapipe_refuses_a_bundle_that_is_not_a_model(tmp_path):
    pytest.importorskip("mediapipe")
    from tha4bridge.trackers.webcam import FaceTracker

    p = tmp_path / "fake.task"
    p.write_bytes(a_bundle())
    with pytest.raises(FaceModelError) as e:
        FaceTracker(p)
    assert str(p) in str(e.value) and "MediaPipe cannot load it" in str(e.value) and "\n" not in str(e.value)


def test_without_the_extra_one_line_says_what_to_install(monkeypatch, tmp_path):
    from tha4bridge.daemon.config import DaemonConfig
    from tha4bridge.trackers.webcam import WebcamConfig, backends

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(ValueError) as e:
        backends()
    assert "pip install 'tha4bridge[webcam]'" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"tha4bridge\[webcam\]"):
        DaemonConfig(webcam=WebcamConfig("0")).check()


def test_webcam_options_are_checked_in_one_line(tmp_path):
    from tha4bridge.daemon.config import DaemonConfig
    from tha4bridge.trackers.webcam import WebcamConfig

    with pytest.raises(ValueError, match="no such video file"):
        WebcamConfig(str(tmp_path / "absent.mp4")).check()
    with pytest.raises(ValueError, match="--webcam-fps"):
        WebcamConfig("0", fps=0).check()
    with pytest.raises(ValueError, match="--no-trackers"):
        DaemonConfig(trackers=False, webcam=WebcamConfig("0")).check()
    WebcamConfig("0").check()
    WebcamConfig("/dev/video3").check()  # a camera device is not checked for existence: it is retried

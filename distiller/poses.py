"""Training poses: a built-in prior of what trackers produce, and pose files (the official pose_dataset.pt, .npy, JSON).

Every batch is a pure function of (seed, step): resuming after a kill or changing the number of DDP ranks replays
exactly the same examples, and each rank takes its slice of the global batch.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tha4bridge.pose import INDEX, LOWER, NUM_PARAMETERS, UPPER, pose_from_dict

EYEBROW_KINDS = ("troubled", "angry", "lowered", "raised", "happy", "serious")
EYE_KINDS = ("wink", "happy_wink", "surprised", "relaxed", "unimpressed", "raised_lower_eyelid")
MOUTH_SHAPES = ("mouth_aaa", "mouth_iii", "mouth_uuu", "mouth_eee", "mouth_ooo", "mouth_delta")
ROTATIONS = ("head_x", "head_y", "neck_z", "body_y", "body_z")


def sample_prior(n: int, g: torch.Generator) -> torch.Tensor:
    """[n, 45] poses from the prior: sparse expressions, one mouth shape at a time, rotations over their ranges.

    Trackers mostly send a few active blend shapes, often mirrored left/right, rarely everything at once; the
    student must also see each parameter alone at full strength, hence the sparse draws with some extremes.
    """
    p = torch.zeros(n, NUM_PARAMETERS)

    def u(*shape):
        return torch.rand(*shape, generator=g)

    def strength(k):  # a quarter at full strength, the rest uniform
        s = u(k)
        return torch.where(u(k) < 0.25, torch.ones(k), s)

    for i in range(n):
        # Eyebrows: usually one kind, mirrored with probability 0.7.
        if u(1) < 0.6:
            kind = EYEBROW_KINDS[int(u(1) * len(EYEBROW_KINDS))]
            left, right = strength(2)
            if u(1) < 0.7:
                right = left
            p[i, INDEX[f"eyebrow_{kind}_left"]] = left
            p[i, INDEX[f"eyebrow_{kind}_right"]] = right
        # Eyes: up to two kinds (blinks combine with others), mirrored with probability 0.6.
        for _ in range(int(u(1) * 3)):
            kind = EYE_KINDS[int(u(1) * len(EYE_KINDS))]
            left, right = strength(2)
            if u(1) < 0.6:
                right = left
            p[i, INDEX[f"eye_{kind}_left"]] = left
            p[i, INDEX[f"eye_{kind}_right"]] = right
        if u(1) < 0.3:
            p[i, INDEX["iris_small_left"]] = p[i, INDEX["iris_small_right"]] = u(1)
        # Mouth: one vowel shape at a time, corners and smirk sometimes.
        if u(1) < 0.7:
            p[i, INDEX[MOUTH_SHAPES[int(u(1) * len(MOUTH_SHAPES))]]] = strength(1)
        if u(1) < 0.3:
            side = "left" if u(1) < 0.5 else "right"
            kind = "raised" if u(1) < 0.5 else "lowered"
            p[i, INDEX[f"mouth_{kind}_corner_{side}"]] = u(1)
            if u(1) < 0.6:
                p[i, INDEX[f"mouth_{kind}_corner_{'right' if side == 'left' else 'left'}"]] = p[
                    i, INDEX[f"mouth_{kind}_corner_{side}"]]
        if u(1) < 0.1:
            p[i, INDEX["mouth_smirk"]] = u(1)
    # Gaze, rotations and breathing are continuous signals: present in every pose.
    p[:, INDEX["iris_rotation_x"]] = u(n) * 2 - 1
    p[:, INDEX["iris_rotation_y"]] = u(n) * 2 - 1
    for name in ROTATIONS:
        x = u(n) * 2 - 1
        # Trackers sit near the middle most of the time: shrink half of the draws towards zero.
        p[:, INDEX[name]] = torch.where(u(n) < 0.5, x * 0.4, x)
    p[:, INDEX["breathing"]] = u(n)
    return p.clamp(torch.from_numpy(LOWER), torch.from_numpy(UPPER))


class PoseFileError(ValueError):
    """A pose file that cannot be used; one line naming the file and the problem."""


def load_pose_file(path: str | Path) -> torch.Tensor:
    """float32 [N, 45] from the official pose_dataset.pt (a tensor, or a tuple/list whose first part is the
    poses), a .npy array, or JSON (a list of 45-lists or of name→value dicts, or {"frames": [{"pose": ...}]})."""
    path = Path(path)
    if not path.is_file():
        raise PoseFileError(f"{path}: file not found")
    try:
        if path.suffix == ".npy":
            data = torch.from_numpy(np.load(path, allow_pickle=False))
        elif path.suffix == ".json":
            doc = json.loads(path.read_text())
            if isinstance(doc, dict):
                doc = [f.get("pose") for f in doc.get("frames", [])]
            rows = [pose_from_dict(r) if isinstance(r, dict) else r for r in doc if r is not None]
            data = torch.tensor(np.asarray(rows, dtype=np.float32))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(data, (tuple, list)):
                data = data[0]
    except PoseFileError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PoseFileError(f"{path}: cannot read poses ({first[:160]})") from None
    if not isinstance(data, torch.Tensor) or data.ndim != 2 or data.shape[1] != NUM_PARAMETERS or len(data) == 0:
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise PoseFileError(f"{path}: expected poses of shape [N, {NUM_PARAMETERS}], got {shape}")
    data = torch.nan_to_num(data.float(), nan=0.0, posinf=0.0, neginf=0.0)
    return data.clamp(torch.from_numpy(LOWER), torch.from_numpy(UPPER))


class PoseSource:
    """Global batch for a step: a `file_fraction` share from the pose file (epoch permutations, like the official
    DistributedSampler with drop_last), the rest from the prior; all seeded by (seed, step)."""

    def __init__(self, seed: int, pose_file: torch.Tensor | None = None, file_fraction: float = 1.0):
        self.seed = seed
        self.file = pose_file
        self.file_fraction = file_fraction if pose_file is not None else 0.0
        self._perm, self._perm_epoch = None, -1  # the current epoch's permutation of the file

    def _file_rows(self, start: int, k: int) -> torch.Tensor:
        n = len(self.file)
        rows = []
        for j in range(start, start + k):
            epoch, offset = divmod(j, n)
            if self._perm_epoch != epoch:
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                self._perm, self._perm_epoch = torch.randperm(n, generator=g), epoch
            rows.append(int(self._perm[offset]))
        return self.file[rows]

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        k = int(round(batch_size * self.file_fraction))
        g = torch.Generator().manual_seed(self.seed * 7_919 + step + 1)
        parts = []
        if k:
            parts.append(self._file_rows(step * k, k))
        if batch_size - k:
            parts.append(sample_prior(batch_size - k, g))
        return torch.cat(parts)

    def validation(self, n: int) -> torch.Tensor:
        """Fixed validation poses (never trained on: a seed of their own), the zero pose first."""
        p = sample_prior(n, torch.Generator().manual_seed(987_654_321))
        p[0] = 0
        return p

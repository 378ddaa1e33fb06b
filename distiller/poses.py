"""Training poses: a built-in prior of what trackers produce, and pose files (the official pose_dataset.pt, .npy, JSON).

Every batch is a pure function of (seed, step): resuming after a kill or changing the number of DDP ranks replays
exactly the same examples, and each rank takes its slice of the global batch.
"""
from __future__ import annotations

from pathlib import Path

import torch

from tha4bridge.pose import BODY, EYE, EYEBROW, HEAD_NECK, INDEX, LOWER, NUM_PARAMETERS, PARAMETER_NAMES, UPPER
from tha4bridge.posefile import PoseFileError, read_pose_file


def _kinds(span: slice, prefix: str) -> tuple[str, ...]:
    """The kinds of a left/right span, in pose order: "eyebrow_troubled_left" → "troubled"."""
    return tuple(n[len(prefix):-len("_left")] for n in PARAMETER_NAMES[span] if n.endswith("_left"))


EYEBROW_KINDS = _kinds(EYEBROW, "eyebrow_")  # troubled, angry, lowered, raised, happy, serious
EYE_KINDS = _kinds(EYE, "eye_")  # wink, happy_wink, surprised, relaxed, unimpressed, raised_lower_eyelid
MOUTH_SHAPES = PARAMETER_NAMES[INDEX["mouth_aaa"]:INDEX["mouth_delta"] + 1]  # the six vowel shapes
ROTATIONS = PARAMETER_NAMES[HEAD_NECK.start:BODY.stop]  # head_x, head_y, neck_z, body_y, body_z


class _Draws:
    """The prior's random draws from one generator. Their order is part of the training data: (seed, step) must
    keep giving the same poses, so a change here changes every run's examples."""

    def __init__(self, g: torch.Generator):
        self.g = g

    def u(self, *shape) -> torch.Tensor:
        return torch.rand(*shape, generator=self.g)

    def strength(self, k: int) -> torch.Tensor:  # a quarter at full strength, the rest uniform
        s = self.u(k)
        return torch.where(self.u(k) < 0.25, torch.ones(k), s)

    def pair(self, row: torch.Tensor, stem: str, kinds: tuple[str, ...], mirror: float) -> None:
        """One kind of a left/right pair at random strengths; the right copies the left with probability `mirror`."""
        kind = kinds[int(self.u(1) * len(kinds))]
        left, right = self.strength(2)
        if self.u(1) < mirror:
            right = left
        row[INDEX[f"{stem}_{kind}_left"]] = left
        row[INDEX[f"{stem}_{kind}_right"]] = right


def _expression(row: torch.Tensor, d: _Draws) -> None:
    """Sparse expression parameters for one pose, written into `row` (all zeros on entry)."""
    u = d.u
    if u(1) < 0.6:  # eyebrows: usually one kind, mirrored with probability 0.7
        d.pair(row, "eyebrow", EYEBROW_KINDS, 0.7)
    for _ in range(int(u(1) * 3)):  # eyes: up to two kinds (blinks combine with others), mirrored with p 0.6
        d.pair(row, "eye", EYE_KINDS, 0.6)
    if u(1) < 0.3:
        row[INDEX["iris_small_left"]] = row[INDEX["iris_small_right"]] = u(1)
    # Mouth: one vowel shape at a time, corners and smirk sometimes.
    if u(1) < 0.7:
        row[INDEX[MOUTH_SHAPES[int(u(1) * len(MOUTH_SHAPES))]]] = d.strength(1)
    if u(1) < 0.3:
        side = "left" if u(1) < 0.5 else "right"
        kind = "raised" if u(1) < 0.5 else "lowered"
        row[INDEX[f"mouth_{kind}_corner_{side}"]] = u(1)
        if u(1) < 0.6:
            other = "right" if side == "left" else "left"
            row[INDEX[f"mouth_{kind}_corner_{other}"]] = row[INDEX[f"mouth_{kind}_corner_{side}"]]
    if u(1) < 0.1:
        row[INDEX["mouth_smirk"]] = u(1)


def sample_prior(n: int, g: torch.Generator) -> torch.Tensor:
    """[n, 45] poses from the prior: sparse expressions, one mouth shape at a time, rotations over their ranges.

    Trackers mostly send a few active blend shapes, often mirrored left/right, rarely everything at once; the
    student must also see each parameter alone at full strength, hence the sparse draws with some extremes.
    """
    p = torch.zeros(n, NUM_PARAMETERS)
    d = _Draws(g)
    for i in range(n):
        _expression(p[i], d)
    # Gaze, rotations and breathing are continuous signals: present in every pose.
    p[:, INDEX["iris_rotation_x"]] = d.u(n) * 2 - 1
    p[:, INDEX["iris_rotation_y"]] = d.u(n) * 2 - 1
    for name in ROTATIONS:
        x = d.u(n) * 2 - 1
        # Trackers sit near the middle most of the time: shrink half of the draws towards zero.
        p[:, INDEX[name]] = torch.where(d.u(n) < 0.5, x * 0.4, x)
    p[:, INDEX["breathing"]] = d.u(n)
    return p.clamp(torch.from_numpy(LOWER), torch.from_numpy(UPPER))


def load_pose_file(path: str | Path) -> torch.Tensor:
    """float32 [N, 45] (N > 0) from any pose file tha4bridge reads (tha4bridge/posefile.py: the official
    pose_dataset.pt, .npy, JSON lists and recordings), NaN set to 0 and clamped into each parameter's range."""
    data = torch.from_numpy(read_pose_file(path))
    if len(data) == 0:
        raise PoseFileError(f"{path}: holds no poses")
    data = torch.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
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

"""The full THA4 teacher ("mode_07"): five networks and the data flow that joins them
(protocols/tha4_model.md, "Teacher networks").

    image I [N,4,512,512], pose P [N,45]
    1. eyebrow decomposer on I[EYEBROW_ROWS, EYEBROW_COLS]   (constant for a fixed image: computed once, cached)
    2. eyebrow morphing combiner (background, eyebrow, P[EYEBROW]) → index 2, the "no combine alpha" image
    3. face morpher on I[TEACHER_FACE_ROWS, TEACHER_FACE_COLS] with step 2 pasted at EYEBROW_IN_FACE,
       P[TEACHER_FACE_INPUT] → face @192
    4. face_morphed_full = I with the face pasted back; face_morphed_half = bilinear resize to 256
    5. body morpher (half, P[ROTATION_INPUT]) @256, then the upscaler @512 → final image

`TeacherPoser` renders the final image; `outputs()` returns everything the distiller trains against.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tha4bridge.pose import EYEBROW, ROTATION_INPUT, TEACHER_FACE_INPUT
from tha4bridge.poser import Poser
from tha4bridge.student import state_dict_mismatch

from .encoder_decoder import EyebrowDecomposer, EyebrowMorphingCombiner, FaceMorpher
from .unet import BodyMorpher, Upscaler

NETWORKS = ("eyebrow_decomposer", "eyebrow_morphing_combiner", "face_morpher", "body_morpher", "upscaler")

# Crops of the 512 frame the teacher reads (protocols/tha4_model.md, "Image conventions"). The teacher's face crop
# is larger than the student's (tha4bridge.imaging.STUDENT_FACE_ROWS/COLS, 128 px): 192 px around it.
EYEBROW_ROWS, EYEBROW_COLS = slice(64, 192), slice(192, 320)
TEACHER_FACE_ROWS, TEACHER_FACE_COLS = slice(32, 224), slice(160, 352)
EYEBROW_IN_FACE = slice(32, 160)  # the eyebrow crop's place inside the 192 face crop (rows and cols)


class TeacherFileError(ValueError):
    """A teacher weight file that cannot be used; the message is one line naming the file and the problem."""


@dataclass
class FaceOutputs:
    """"mode_12": the first three steps. `face` is the face morpher's 192x192 image (mode_12 output 0)."""

    face: torch.Tensor
    face_morpher: list[torch.Tensor]  # 8 tensors @192
    combiner: list[torch.Tensor]  # 8 tensors @128
    decomposer: list[torch.Tensor]  # 6 tensors @128


@dataclass
class TeacherOutputs:
    final: torch.Tensor
    upscaler: list[torch.Tensor]  # [merged (= final), alpha, warped, grid_change, direct] @512
    face_morphed_full: torch.Tensor
    body_morpher: list[torch.Tensor]  # [merged, alpha, warped, grid_change, direct] @256
    face: FaceOutputs

    @property
    def warped(self) -> torch.Tensor:
        return self.upscaler[2]

    @property
    def grid_change(self) -> torch.Tensor:
        return self.upscaler[3]

    def official_list(self) -> list[torch.Tensor]:
        """The 33 entries in the official output order (protocols/tha4_model.md, "Teacher networks")."""
        f = self.face
        return [*self.upscaler, self.face_morphed_full, *self.body_morpher, *f.face_morpher, *f.combiner,
                *f.decomposer]


class Teacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.eyebrow_decomposer = EyebrowDecomposer()
        self.eyebrow_morphing_combiner = EyebrowMorphingCombiner()
        self.face_morpher = FaceMorpher()
        self.body_morpher = BodyMorpher()
        self.upscaler = Upscaler()
        self._decomposed: tuple[torch.Tensor, list[torch.Tensor]] | None = None

    def decompose(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Step 1, reused while the image batch is the same (shape and values), as the official poser does."""
        crop = image[:, :, EYEBROW_ROWS, EYEBROW_COLS]
        if self._decomposed is not None:
            key, value = self._decomposed
            if key.shape == crop.shape and key.device == crop.device and torch.equal(key, crop):
                return value
        value = self.eyebrow_decomposer(crop)
        self._decomposed = (crop.clone(), value)
        return value

    def face_outputs(self, image: torch.Tensor, pose: torch.Tensor,
                     decomposed: list[torch.Tensor] | None = None) -> FaceOutputs:
        if decomposed is None:
            decomposed = self.decompose(image)
        combined = self.eyebrow_morphing_combiner(decomposed[3], decomposed[0], pose[:, EYEBROW])
        face_in = image[:, :, TEACHER_FACE_ROWS, TEACHER_FACE_COLS].clone()
        face_in[:, :, EYEBROW_IN_FACE, EYEBROW_IN_FACE] = combined[2]
        morphed = self.face_morpher(face_in, pose[:, TEACHER_FACE_INPUT])
        return FaceOutputs(morphed[0], morphed, combined, decomposed)

    def forward(self, image: torch.Tensor, pose: torch.Tensor,
                decomposed: list[torch.Tensor] | None = None) -> TeacherOutputs:
        face = self.face_outputs(image, pose, decomposed)
        full = image.clone()
        full[:, :, TEACHER_FACE_ROWS, TEACHER_FACE_COLS] = face.face
        half = F.interpolate(full, size=(256, 256), mode="bilinear", align_corners=False)
        rotation = pose[:, ROTATION_INPUT]
        body = self.body_morpher(half, rotation)
        coarse_posed = F.interpolate(body[0], size=(512, 512), mode="bilinear", align_corners=False)
        coarse_grid = F.interpolate(body[3], size=(512, 512), mode="bilinear", align_corners=False)
        up = self.upscaler(full, coarse_posed, coarse_grid, rotation)
        return TeacherOutputs(up[0], up, full, body, face)

    def load_folder(self, folder: str | Path) -> "Teacher":
        """Load the five official `.pt` files from `folder` (strict: every key and shape must match)."""
        folder = Path(folder)
        for name in NETWORKS:
            load_checked(getattr(self, name), folder / f"{name}.pt")
        return self

    def load_state_dicts(self, state_dicts: dict[str, dict[str, torch.Tensor]]) -> "Teacher":
        """Load in-memory state dicts keyed by network name (the fixture's synthetic weights, for one)."""
        for name in NETWORKS:
            check_state_dict(getattr(self, name), state_dicts[name], f"<{name}>")
            getattr(self, name).load_state_dict(state_dicts[name])
        return self


def check_state_dict(module: nn.Module, sd, where: str) -> None:
    """Raise TeacherFileError with one line on the first missing/extra key or wrong shape."""
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise TeacherFileError(f"{where}: not a state dict of tensors (got {type(sd).__name__})")
    problem = state_dict_mismatch(module, sd)
    if problem is None:
        return
    kind, key, got, want = problem
    expected = module.state_dict()
    if kind == "missing":
        raise TeacherFileError(f"{where}: missing key '{key}' ({len(set(expected) - set(sd))} missing in all)")
    if kind == "shape":
        raise TeacherFileError(f"{where}: key '{key}' has shape {list(got)}, expected {list(want)}")
    extra = [k for k in sd if k not in expected]
    raise TeacherFileError(f"{where}: unexpected key '{key}' ({len(extra)} unexpected in all)")


def load_checked(module: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise TeacherFileError(f"{path}: file not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt zip, pickle with code, truncated file...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TeacherFileError(f"{path}: not a loadable PyTorch state dict ({first})") from None
    check_state_dict(module, sd, str(path))
    module.load_state_dict(sd)


def is_teacher_folder(folder: str | Path) -> bool:
    return all((Path(folder) / f"{n}.pt").is_file() for n in NETWORKS)


class TeacherPoser(Poser):
    """The THA4 teacher as a Poser for one character image. Slow (seconds per frame on a CPU): a distillation source.

    mode: `exact` — NCHW float32, the official numerics (the reference test runs this). Channels-last float32
                    was measured no faster on this CPU, so there is no separate fp32 mode.
          `bf16`  — channels-last with bfloat16 autocast for convolutions and matmuls (AMX on recent Xeons,
                    tensor cores on CUDA), warps kept in float32: 0.43x the exact mode's time per frame here.
    """

    MODES = ("exact", "bf16")

    def __init__(self, teacher: Teacher, image: torch.Tensor, device: torch.device | str = "cpu",
                 name: str = "tha4-teacher", mode: str = "exact"):
        super().__init__(name, torch.device(device))
        if mode not in self.MODES:
            raise ValueError(f"teacher mode must be one of {', '.join(self.MODES)}, got {mode!r}")
        self.mode = mode
        self.teacher = teacher.to(self.device).eval().requires_grad_(False)
        self.channels_last = mode == "bf16"
        if self.channels_last:
            self.teacher = self.teacher.to(memory_format=torch.channels_last)
        self.image = image.to(self.device, torch.float32)
        self._decomposed: list[torch.Tensor] | None = None  # step 1 for our one image, computed on first use
        # Poses per forward pass. On the CPU one at a time: measured here, a batch of 4 took 1.5x longer per frame
        # than single frames (activations of 32+ MB per frame fall out of cache; convolutions are compute-bound at
        # batch 1 already). On a GPU the whole batch at once.
        self.chunk = 1 if self.device.type == "cpu" else 1 << 30

    def _autocast(self):
        if self.mode == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @classmethod
    def load(cls, folder: str | Path, image: torch.Tensor, device="cpu", mode: str = "exact") -> "TeacherPoser":
        return cls(Teacher().load_folder(folder), image, device, name=f"tha4-teacher:{Path(folder).name}", mode=mode)

    def rest_image(self) -> torch.Tensor:
        return self.image

    def _batch_image(self, n: int) -> torch.Tensor:
        image = self.image[None].expand(n, -1, -1, -1)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        return image

    def _decomposition(self, n: int) -> list[torch.Tensor]:
        """Step 1 depends on the image only: run it once on one copy and broadcast it over the batch."""
        if self._decomposed is None:
            crop = self._batch_image(1)[:, :, EYEBROW_ROWS, EYEBROW_COLS]
            with self._autocast():
                self._decomposed = [t.float() for t in self.teacher.eyebrow_decomposer(crop)]
        return [t.expand(n, -1, -1, -1) for t in self._decomposed]

    @torch.inference_mode()
    def outputs(self, pose: torch.Tensor) -> TeacherOutputs:
        """All intermediate outputs for a sanitized [N, 45] pose (what body distillation needs), float32."""
        return self._chunked(self.teacher, pose)

    @torch.inference_mode()
    def face_outputs(self, pose: torch.Tensor) -> FaceOutputs:
        """Only the first three steps ("mode_12", for face distillation): much cheaper than `outputs`."""
        return self._chunked(self.teacher.face_outputs, pose)

    def _chunked(self, step, pose: torch.Tensor):
        """`step(image, pose, decomposition)` over `self.chunk` poses at a time, outputs joined along the batch."""
        pose = pose.to(self.device, torch.float32)
        parts = []
        for start in range(0, pose.shape[0], self.chunk):
            p = pose[start:start + self.chunk]
            with self._autocast():
                out = step(self._batch_image(len(p)), p, self._decomposition(len(p)))
            parts.append(out)
        return _join(parts)

    def _render(self, pose: torch.Tensor) -> torch.Tensor:
        return self.outputs(pose).final

    def describe(self) -> dict:
        return {**super().describe(), "networks": list(NETWORKS), "mode": self.mode}


def _join(parts: list):
    """TeacherOutputs/FaceOutputs of consecutive pose chunks → one, every tensor joined along the batch as float32
    (bf16 autocast leaves some in bfloat16). A single float32 part comes back as it is, nothing copied."""
    def tensor(ts) -> torch.Tensor:
        return ts[0].float() if len(ts) == 1 else torch.cat([t.float() for t in ts])

    fields = {}
    for name, value in vars(parts[0]).items():
        values = [vars(p)[name] for p in parts]
        if isinstance(value, torch.Tensor):
            fields[name] = tensor(values)
        elif isinstance(value, list):
            fields[name] = [tensor(ts) for ts in zip(*values)]
        else:  # the nested FaceOutputs
            fields[name] = _join(values)
    return type(parts[0])(**fields)

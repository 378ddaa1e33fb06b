"""The THA4 student ("mode_14"), read top to bottom next to the paper's figure of it.

Two SIRENs (sine-activated per-pixel MLPs, ω0 = 30 everywhere) replace the five-network teacher:

* FaceMorpher: (x, y, pose[0:39]) at 128×128 → the RGBA face crop (rows 80:208, cols 192:320 of the frame).
* BodyMorpher: three levels (128 → 256 → 512). Each level sees its pixel position and the full 45-value pose;
  levels after the first also see the previous level's features, bilinearly upsampled. The last linear
  layer gives 7 channels per pixel: a warp (grid change, 2), a blend weight (alpha, 1) and a colour (4).
  The output is the input image warped by the grid change, blended with the colour by alpha.
* Inference: paste the face crop into the character image (a hard overwrite), run the body morpher.

These modules carry the official state-dict keys and are what the distiller trains. The real-time renderer
(`student_infer.py`) runs the same arithmetic rearranged for speed from these modules' weights.
"""
from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field, asdict
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from .imaging import FACE_COLS, FACE_ROWS, ImageError, load_character_png
from .pose import FACE_INPUT, NUM_PARAMETERS
from .poser import Poser, pick_device

OMEGA0 = 30.0


@dataclass
class StudentArch:
    """Student sizes. The defaults are the official architecture (exports load in the official code)."""

    face_width: int = 128
    face_layers: int = 8
    body_sizes: tuple[int, ...] = (128, 256, 512)
    body_widths: tuple[int, ...] = (360, 180, 90)
    body_layers: int = 3  # sine layers per level (≥ 2)

    def is_official(self) -> bool:
        return self == StudentArch()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["body_sizes"], d["body_widths"] = list(self.body_sizes), list(self.body_widths)
        return d

    @staticmethod
    def from_dict(d: dict) -> "StudentArch":
        d = dict(d)
        d["body_sizes"] = tuple(int(s) for s in d.get("body_sizes", StudentArch.body_sizes))
        d["body_widths"] = tuple(int(w) for w in d.get("body_widths", StudentArch.body_widths))
        return StudentArch(**d)


def position_grid(size: int, device=None) -> torch.Tensor:
    """[2, size, size]: channel 0 = x (along columns), 1 = y (along rows), pixel centres in (-1, 1)
    (the affine_grid align_corners=False convention)."""
    c = (2.0 * torch.arange(size, dtype=torch.float32, device=device) + 1.0) / size - 1.0
    return torch.stack([c[None, :].expand(size, size), c[:, None].expand(size, size)])


def warp(image: torch.Tensor, grid_change: torch.Tensor) -> torch.Tensor:
    """Sample `image` at (identity + grid_change): bilinear, border padding, align_corners=False."""
    n, _, h, w = grid_change.shape
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=image.device).expand(n, 2, 3)
    base = F.affine_grid(identity, [n, 2, h, w], align_corners=False)
    grid = base + grid_change.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


class SineLayer(nn.Module):
    """1×1 convolution then sin(ω0·x). Init as in SIREN: the first layer U(−1/in, 1/in), others
    U(−√(6/in)/ω0, √(6/in)/ω0), so activations stay well spread through depth."""

    def __init__(self, cin: int, cout: int, first: bool):
        super().__init__()
        self.linear = nn.Conv2d(cin, cout, 1)
        bound = 1.0 / cin if first else math.sqrt(6.0 / cin) / OMEGA0
        nn.init.uniform_(self.linear.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(OMEGA0 * self.linear(x))


def last_linear(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")  # std √(2/in), as the official He init
    return conv


class Siren(nn.Module):
    def __init__(self, cin: int, width: int, layers: int, cout: int):
        super().__init__()
        self.sine_layers = nn.ModuleList(
            [SineLayer(cin if i == 0 else width, width, first=(i == 0)) for i in range(layers)])
        self.last_linear = last_linear(width, cout)

    def forward(self, x):
        for layer in self.sine_layers:
            x = layer(x)
        return self.last_linear(x)


class FaceMorpher(nn.Module):
    """pose[0:39] → face crop [N, 4, 128, 128] (official convention; no output activation)."""

    size = 128

    def __init__(self, arch: StudentArch = StudentArch()):
        super().__init__()
        self.pose_size = FACE_INPUT.stop
        self.siren = Siren(2 + self.pose_size, arch.face_width, arch.face_layers, 4)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        n, s = pose.shape[0], self.size
        pos = position_grid(s, pose.device)[None].expand(n, 2, s, s)
        x = torch.cat([pos, pose[:, :self.pose_size, None, None].expand(-1, -1, s, s)], dim=1)
        return self.siren(x)


class BodyMorpher(nn.Module):
    """(image [N, 4, 512, 512], pose [N, 45]) → [blended, alpha, color_change, warped, grid_change]."""

    def __init__(self, arch: StudentArch = StudentArch()):
        super().__init__()
        self.sizes, widths = arch.body_sizes, arch.body_widths
        extra = 2 + NUM_PARAMETERS  # position + pose, at every level
        self.siren_layers = nn.ModuleList()
        for i, width in enumerate(widths):
            cin = extra if i == 0 else width + extra
            cout = widths[i + 1] if i + 1 < len(widths) else width  # a level's last layer feeds the next
            layers = [SineLayer(cin, width, first=(i == 0))]
            layers += [SineLayer(width, width, first=False) for _ in range(arch.body_layers - 2)]
            layers += [SineLayer(width, cout, first=False)]
            self.siren_layers.append(nn.Sequential(*layers))
        self.last_linear = last_linear(widths[-1], 7)

    def forward(self, image: torch.Tensor, pose: torch.Tensor) -> list[torch.Tensor]:
        n = pose.shape[0]
        x = None
        for size, level in zip(self.sizes, self.siren_layers):
            pos_pose = torch.cat([position_grid(size, pose.device)[None].expand(n, 2, size, size),
                                  pose[:, :, None, None].expand(-1, -1, size, size)], dim=1)
            if x is not None:  # previous features first, then position and pose (official order)
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                pos_pose = torch.cat([x, pos_pose], dim=1)
            x = level(pos_pose)
        out = self.last_linear(x)
        grid_change, alpha, color_change = out[:, 0:2], out[:, 2:3], out[:, 3:7]
        warped = warp(image, grid_change)
        blended = (1 - alpha) * warped + alpha * color_change
        return [blended, alpha, color_change, warped, grid_change]


def paste_face(image: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """A copy of `image` [N, 4, 512, 512] with the face crop hard-overwritten (no blend, no clamp)."""
    out = image.clone()
    out[:, :, FACE_ROWS, FACE_COLS] = face
    return out


# ---------------------------------------------------------------------------------------------------
# Loading a character-model folder, refusing bad ones with one line.

class ModelFileError(ValueError):
    """A character-model folder that cannot be used. str() is one line naming the file and the problem."""


YAML_NAME = "character_model.yaml"
YAML_KEYS = ("character_image_file_name", "face_morpher_file_name", "body_morpher_file_name")


@dataclass
class CharacterModel:
    folder: Path
    image_path: Path
    face_path: Path
    body_path: Path
    arch: StudentArch = field(default_factory=StudentArch)


def read_character_yaml(folder: str | Path) -> CharacterModel:
    folder = Path(folder)
    y = folder / YAML_NAME
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: not a folder (expected a character-model folder with {YAML_NAME})")
    if not y.is_file():
        raise ModelFileError(f"{y}: missing (a character-model folder needs {YAML_NAME})")
    try:
        doc = yaml.safe_load(y.read_text())
    except Exception as e:
        raise ModelFileError(f"{y}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ModelFileError(f"{y}: expected a mapping with keys {', '.join(YAML_KEYS)}")
    missing = [k for k in YAML_KEYS if not isinstance(doc.get(k), str)]
    if missing:
        raise ModelFileError(f"{y}: missing key {missing[0]}")
    arch = StudentArch()
    if doc.get("architecture") is not None:  # our exports of non-default sizes record their shape
        try:
            arch = StudentArch.from_dict(doc["architecture"])
        except Exception as e:
            raise ModelFileError(f"{y}: bad 'architecture' entry ({e})") from None
    paths = [folder / doc[k] for k in YAML_KEYS]
    for p in paths:
        if not p.is_file():
            raise ModelFileError(f"{p}: missing (named in {y.name})")
    return CharacterModel(folder, *paths, arch=arch)


def state_dict_mismatch(module: nn.Module, sd: dict) -> tuple[str, str, tuple | None, tuple | None] | None:
    """The first difference between `sd` and `module`'s own state dict, as (kind, key, got shape, expected
    shape) with kind "missing", "shape" or "unexpected"; None when keys and shapes are exactly the same.
    Shared by the student and teacher loaders, which each word the error for their own files."""
    want = module.state_dict()
    for k, v in want.items():
        if k not in sd:
            return "missing", k, None, tuple(v.shape)
        if tuple(sd[k].shape) != tuple(v.shape):
            return "shape", k, tuple(sd[k].shape), tuple(v.shape)
    for k in sd:
        if k not in want:
            return "unexpected", k, tuple(sd[k].shape), None
    return None


def load_state_dict_file(path: Path, module: nn.Module) -> None:
    """Load a plain state-dict .pt into `module`, refusing anything that is not exactly its keys and shapes."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except zipfile.BadZipFile:
        raise ModelFileError(f"{path}: not a PyTorch zip archive (truncated or not a .pt file)") from None
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "zip" in first.lower() or "central directory" in first.lower() or "EOF" in first:
            raise ModelFileError(f"{path}: truncated or not a PyTorch zip archive ({first})") from None
        raise ModelFileError(f"{path}: cannot be loaded safely ({first[:200]})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelFileError(f"{path}: not a state dict of tensors")
    problem = state_dict_mismatch(module, sd)
    if problem is not None:
        kind, k, got, expected = problem
        if kind == "missing":
            raise ModelFileError(f"{path}: missing key {k} (expected shape {expected})")
        if kind == "shape":
            raise ModelFileError(f"{path}: key {k} has shape {got}, expected {expected}")
        raise ModelFileError(f"{path}: unexpected key {k} (shape {got})")
    bad = [k for k, t in sd.items() if not torch.isfinite(t).all()]
    if bad:
        raise ModelFileError(f"{path}: key {bad[0]} holds NaN or infinite values")
    module.load_state_dict({k: t.float() for k, t in sd.items()})


def load_student_modules(folder: str | Path) -> tuple[CharacterModel, FaceMorpher, BodyMorpher, torch.Tensor]:
    """Read and validate a folder: (paths, face morpher, body morpher, character image), all on the CPU."""
    cm = read_character_yaml(folder)
    try:
        image = load_character_png(cm.image_path)
    except ImageError as e:
        raise ModelFileError(str(e)) from None
    face, body = FaceMorpher(cm.arch), BodyMorpher(cm.arch)
    load_state_dict_file(cm.face_path, face)
    load_state_dict_file(cm.body_path, body)
    return cm, face.eval(), body.eval(), image


class StudentPoser(Poser):
    """A distilled character: renders with `student_infer.SirenRenderer` in `exact` or `fast` mode."""

    def __init__(self, folder: str | Path, device: str | torch.device = "auto", mode: str = "exact",
                 name: str | None = None):
        from .student_infer import SirenRenderer  # the fast arithmetic lives beside, not inside, the model

        self.model, face, body, image = load_student_modules(folder)
        super().__init__(name or Path(folder).resolve().name, pick_device(device))
        self.mode = mode
        self.face_morpher, self.body_morpher = face.to(self.device), body.to(self.device)
        self._image = image.to(self.device)
        self.renderer = SirenRenderer(face, body, self._image, mode=mode, device=self.device)

    @staticmethod
    def load(folder, device="auto", mode="exact", name=None) -> "StudentPoser":
        return StudentPoser(folder, device=device, mode=mode, name=name)

    def _render(self, pose: torch.Tensor) -> torch.Tensor:
        return self.renderer.render(pose)

    def rest_image(self) -> torch.Tensor:
        return self._image

    def reference_forward(self, pose: torch.Tensor) -> list[torch.Tensor]:
        """The plain module computation (the official data flow): body outputs then the face crop."""
        pose = self.prepare(pose)
        with torch.inference_mode():
            face = self.face_morpher(pose)
            image = paste_face(self._image.expand(pose.shape[0], -1, -1, -1), face)
            return self.body_morpher(image, pose) + [face]

    def describe(self) -> dict:
        d = super().describe()
        d.update(mode=self.mode, folder=str(self.model.folder),
                 architecture=self.model.arch.to_dict())
        return d


def load_poser(spec: str | Path = "demo", device: str | torch.device = "auto", mode: str = "exact",
               name: str | None = None) -> Poser:
    """A folder → StudentPoser; the word `demo` → the built-in procedural demo character."""
    if str(spec) == "demo":
        from .demo import DemoPoser

        return DemoPoser(device=device, name=name or "demo")
    return StudentPoser(spec, device=device, mode=mode, name=name)

"""OnnxPoser: an exported student run by ONNX Runtime, behind the same `Poser` interface as the torch renderer.

The spec is an exported `.onnx` file, or a character-model folder, which is exported once into a cache
(~/.cache/tha4bridge/onnx, keyed by the folder's files) and loaded from there. Execution providers are tried
in the order asked; the first that builds a session wins, and `report` says in one line what was chosen and
why the others were not.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from ..poser import Poser
from ..region import FRAME
from .runtime import ExportError, require_onnxruntime

PROVIDERS = {"dml": "DmlExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
             "coreml": "CoreMLExecutionProvider", "openvino": "OpenVINOExecutionProvider",
             "cpu": "CPUExecutionProvider"}
DEFAULT_PROVIDERS = "dml,cuda,coreml,openvino,cpu"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tha4bridge" / "onnx"


def parse_providers(text: str) -> list[str]:
    """`dml,cuda,cpu` → ONNX Runtime provider names, in order; an unknown short name is refused in one line."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in PROVIDERS]
    if bad or not names:
        raise ExportError(f"--providers: unknown provider {bad[0] if bad else repr(text)} "
                          f"(known: {', '.join(PROVIDERS)})")
    return names


def cached_export(folder: str | Path, fp16: bool = False) -> Path:
    """The folder exported to the cache, reused while its files (names, sizes, times) are unchanged."""
    from ..student import read_character_yaml
    from .export import export

    cm = read_character_yaml(folder)
    key = hashlib.sha256()
    for p in (cm.folder / "character_model.yaml", cm.image_path, cm.face_path, cm.body_path):
        st = p.stat()
        key.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|".encode())
    out = CACHE / f"{cm.folder.resolve().name}-{key.hexdigest()[:16]}{'-fp16' if fp16 else ''}.onnx"
    if not out.is_file():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        export(folder, tmp, fp16=fp16)
        tmp.replace(out)  # atomic: a second daemon never reads a half-written file
    return out


def open_session(path: Path, providers: list[str], threads: int | None = None):
    """(session, report): the first provider in `providers` that builds a session for `path`."""
    ort = require_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ORT's warnings (e.g. fp16 nodes it cannot pre-fold) are not the user's problem
    if threads:
        opts.intra_op_num_threads = threads
    available = set(ort.get_available_providers())
    skipped = []
    for short in providers:
        name = PROVIDERS[short]
        if name not in available:
            skipped.append(f"{short}: not in this onnxruntime build")
            continue
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=[name])
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "protobuf" in first.lower() or "load model" in first.lower() or "no graph" in first.lower():
                raise ExportError(f"{path}: not a readable ONNX model ({first[:160]})") from None
            skipped.append(f"{short}: failed ({first[:120]})")
            continue
        why = f" ({'; '.join(skipped)})" if skipped else ""
        return session, f"onnxruntime {ort.__version__}: running {path.name} on {short}{why}"
    raise ExportError(f"--providers {','.join(providers)}: none is usable here ({'; '.join(skipped)}); "
                      f"this onnxruntime build has {', '.join(sorted(available))}")


def check_interface(session, path: Path) -> None:
    """Refuse a foreign graph: ours has one input pose [N, 45] and one output image [N, 4, 512, 512]."""
    ins, outs = session.get_inputs(), session.get_outputs()
    region = session.get_modelmeta().custom_metadata_map.get("tha4bridge.region")
    if region:
        raise ExportError(f"{path}: this export renders only the crop {region} of the frame; the onnxruntime "
                          "backend runs whole-frame exports (serve --region crops one)")
    ok = (len(ins) == 1 and ins[0].name == "pose" and list(ins[0].shape)[1:] == [45] and len(outs) == 1
          and list(outs[0].shape)[1:] == [4, FRAME, FRAME])
    if not ok:
        got = ", ".join(f"{i.name} {i.shape}" for i in ins) + " -> " + ", ".join(f"{o.name} {o.shape}" for o in outs)
        raise ExportError(f"{path}: not a tha4bridge student graph (expected pose [N, 45] -> image "
                          f"[N, 4, {FRAME}, {FRAME}], got {got})")


class OnnxPoser(Poser):
    """Renders with an ONNX Runtime session on the CPU side of torch (frames come back as CPU tensors)."""

    def __init__(self, spec: str | Path, providers: str = DEFAULT_PROVIDERS, name: str | None = None,
                 threads: int | None = None):
        require_onnxruntime()
        wanted = parse_providers(providers)
        spec = Path(spec)
        if spec.suffix.lower() == ".onnx":
            if not spec.is_file():
                raise ExportError(f"{spec}: missing")
            path, image = spec, None
        else:
            from ..student import load_student_modules

            image = load_student_modules(spec)[3]  # validates the folder first: a bad one is refused in one line
            path = cached_export(spec)
        super().__init__(name or spec.resolve().stem, torch.device("cpu"))
        self.mode = "onnxruntime"  # what `bench` and `hello` report beside exact/fast
        self.session, self.report = open_session(path, wanted, threads or torch.get_num_threads())
        check_interface(self.session, path)
        logging.getLogger(__name__).info("%s", self.report)
        self.path = path
        self._image = image if image is not None else self._image_from_graph(path)

    @staticmethod
    def _image_from_graph(path: Path) -> torch.Tensor:
        """The character image stored in the graph (its `character` constant), or the zero pose rendered."""
        import onnx
        from onnx import numpy_helper

        for init in onnx.load(str(path)).graph.initializer:
            if init.name == "character":
                return torch.from_numpy(numpy_helper.to_array(init).astype(np.float32)[0].copy())
        return torch.zeros(4, FRAME, FRAME)

    def _render(self, pose: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"pose": np.ascontiguousarray(pose.cpu().numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)

    def rest_image(self) -> torch.Tensor:
        return self._image

    def describe(self) -> dict:
        d = super().describe()
        d.update(mode="onnxruntime", backend="onnxruntime", providers=self.session.get_providers(),
                 model=str(self.path))
        return d

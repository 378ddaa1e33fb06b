"""Where the browser-runtime page gets onnxruntime-web: a local copy (`serve --ort-web DIR`) or a public CDN.

The library is never part of this repository: a user either lets the page load a pinned version from
jsDelivr, or installs the npm package (`npm install onnxruntime-web@ORT_WEB_VERSION`) and points `--ort-web`
at it. Files are served from inside that folder only (a path that resolves elsewhere, `..` or a symbolic link
out of it, is 404).
"""
from __future__ import annotations

from pathlib import Path

ORT_WEB_VERSION = "1.30.0"  # the version tests, CI and the CDN default use (one place to move it)
CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
ENTRY = "ort.min.js"  # the page's script: the UMD build with the WASM and WebGPU backends
# What ENTRY loads next. The page names them with ?token= appended when the server needs a token (the library
# would otherwise request them bare and be refused).
WASM_FILES = {"mjs": "ort-wasm-simd-threaded.jsep.mjs", "wasm": "ort-wasm-simd-threaded.jsep.wasm"}
# Python's mimetypes lacks .mjs before 3.12, and a module script or wasm with the wrong type is refused.
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
         ".map": "application/json", ".json": "application/json"}


def ort_web_dir(arg: str | Path | None) -> Path | None:
    """`--ort-web DIR` → the folder holding ort.min.js (DIR itself, DIR/dist, or DIR/node_modules/
    onnxruntime-web/dist, so the npm package, its prefix or its dist all work); ValueError in one line."""
    if arg is None:
        return None
    root = Path(arg).expanduser()
    for d in (root, root / "dist", root / "node_modules" / "onnxruntime-web" / "dist"):
        if (d / ENTRY).is_file():
            return d.resolve()
    raise ValueError(f"--ort-web {arg}: no {ENTRY} there (give onnxruntime-web's dist folder, e.g. after "
                     f"`npm install --prefix DIR onnxruntime-web@{ORT_WEB_VERSION}`, "
                     "DIR/node_modules/onnxruntime-web/dist)")


def resolve_inside(root: Path, relative: str) -> Path | None:
    """The file `relative` names inside `root`, or None when it is not a file there (or lies outside)."""
    try:
        path = (root / relative).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path

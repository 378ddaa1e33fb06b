"""The optional dependencies (onnx, onnxruntime) and the one-line errors about them and about .onnx files."""
from __future__ import annotations

INSTALL = "pip install 'tha4bridge[onnx]'"


class ExportError(ValueError):
    """An export or ONNX backend request that cannot be met; str() is one line."""


def require_onnx():
    try:
        import onnx
    except ImportError:
        raise ExportError(f"exporting to ONNX needs the onnx package, which is not installed: {INSTALL}") from None
    return onnx


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ExportError(f"--backend onnxruntime needs the onnxruntime package, which is not installed: {INSTALL}"
                          ) from None
    return onnxruntime

"""`/models/<stream>.onnx`: a stream's student as one ONNX file, for the browser-runtime page.

An exported `.onnx` stream (or one the onnxruntime backend already runs) is served as it is. A character-model
folder is exported once through `onnx.backend.cached_export` (the cache `--backend onnxruntime` uses), on a
background thread started by the first request: exporting traces the network and takes seconds to a minute,
and the event loop must not wait for it. Until it is done the route answers 503 with Retry-After.
The demo character is drawing code, not a network: there is nothing to export.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from ..defaults import DEMO

log = logging.getLogger("tha4bridge.web")


@dataclass
class ModelState:
    path: Path | None = None  # the .onnx file, once ready
    error: str | None = None  # one line, when the export failed (not retried until the daemon restarts)


class ModelExports:
    def __init__(self):
        self._lock = threading.Lock()  # a leaf: guards _states
        self._states: dict[str, ModelState] = {}  # by resolved folder

    def lookup(self, spec: str, poser) -> ModelState | None:
        """The state of `spec`'s export (starting it when new); None while it runs. Raises ValueError (one
        line) for what cannot be exported at all: the demo, a missing onnx package."""
        if spec == DEMO:
            raise ValueError("this stream shows the demo character, which is drawing code, not a network: "
                             "the browser runtime needs a student stream (serve --student NAME=FOLDER)")
        ready = getattr(poser, "path", None)  # the onnxruntime backend's file (an .onnx spec or its cache)
        if isinstance(ready, Path) and ready.suffix == ".onnx" and ready.is_file():
            return ModelState(path=ready)
        if Path(spec).suffix.lower() == ".onnx":
            return ModelState(path=Path(spec)) if Path(spec).is_file() else ModelState(error=f"{spec}: missing")
        from ..onnx.runtime import require_onnx

        try:
            require_onnx()
        except Exception as e:
            raise ValueError(f"the browser runtime needs the stream exported to ONNX: {e}") from None
        key = str(Path(spec).resolve())
        with self._lock:
            state = self._states.get(key)
            if state is None:
                self._states[key] = ModelState()
                threading.Thread(target=self._export, args=(key,), name="web-export", daemon=True).start()
                return None
        return state if (state.path or state.error) else None

    def _export(self, folder: str) -> None:
        from ..onnx.backend import cached_export

        state = ModelState()
        try:
            state.path = cached_export(folder)
            log.info("browser runtime: %s exported to %s", folder, state.path)
        except Exception as e:  # a folder that fails validation, an export error: reported to the page
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            state.error = f"{folder}: cannot be exported to ONNX ({why})"
            log.warning("browser runtime: %s", state.error)
        with self._lock:
            self._states[folder] = state

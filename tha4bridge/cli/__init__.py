"""`tha4bridge` command line. Each command is a thin shell over a module that does the work; the modules
here group them: offline (render, bench, inspect), serve, watch (watch, snapshot, record), trackers, track,
speak, params, export (a student as ONNX)."""
from .app import app
from . import export, offline, params, serve, speak, track, trackers, watch  # noqa: F401,E402  (each registers its commands on `app`)

__all__ = ["app"]

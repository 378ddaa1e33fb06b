"""`tha4bridge` command line. Each command is a thin shell over a module that does the work; the modules
here group them: offline (render, bench, inspect), serve, watch (watch, snapshot, record), trackers,
speak, params."""
from .app import app
from . import offline, params, serve, speak, trackers, watch  # noqa: F401,E402  (each registers its commands on `app`)

__all__ = ["app"]

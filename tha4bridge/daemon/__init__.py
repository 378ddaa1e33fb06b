"""`tha4bridge serve`, composed of small parts: see daemon.py's docstring for the parts, threads and lock."""
from .commands import COMMANDS
from .config import DaemonConfig
from .daemon import Daemon, serve

__all__ = ["COMMANDS", "Daemon", "DaemonConfig", "serve"]

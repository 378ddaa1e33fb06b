"""Defaults shared by the CLI, the client library, the daemon and the tests: one place to change a port.

Control and frame sockets listen on loopback only (a game on the same machine is the common client; the
control socket has no authentication). Tracker ports listen on every interface, because a phone on the
user's Wi-Fi sends to them.
"""
from __future__ import annotations

CONTROL_ENDPOINT = "tcp://127.0.0.1:5590"  # ZeroMQ ROUTER, protocols/control.md
FRAMES_ENDPOINT = "tcp://127.0.0.1:5591"  # ZeroMQ XPUB, protocols/frames.md
VMC_PORT = 39539  # UDP, the VMC protocol's usual port (VSeeFace, VMagicMirror, Warudo send here)
IFM_PORT = 49983  # UDP, iFacialMocap's fixed port
TRACKER_HOST = "0.0.0.0"

DEMO = "demo"  # what a user types for the built-in demo character (demo.py), and its stream's name
IDLE_FPS = 10.0  # frames/s of an unchanged pose (idle motion keeps moving)
CONTROL_HOLD = 5.0  # seconds a `set_pose` holds before tracking takes the stream back

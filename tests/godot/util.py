"""Running the Godot 3 addon's headless tools (godot_sample/godot3) in a real `godot3-server`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
GODOT3 = ROOT / "godot_sample" / "godot3"
GODOT4 = ROOT / "godot_sample" / "godot4"
ADDON3 = GODOT3 / "addons" / "tha4bridge"
ADDON4 = GODOT4 / "addons" / "tha4bridge"
GODOT = shutil.which("godot3-server")

needs_godot = pytest.mark.skipif(
    GODOT is None, reason="godot3-server is not installed (apt-get install godot3-server): the Godot 3 addon "
                          "cannot run here")

# LANG=C makes Godot print locale errors on every start.
ENV = {**os.environ, "LANG": "en_US.UTF-8"}


SCRIPTS = Path(__file__).resolve().parent / "scripts"  # test-only Godot 3 scripts, run inside godot_sample/godot3


def tool(name: str, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """`godot3-server --path godot3 -s res://addons/tha4bridge/tools/NAME.gd ARGS`, finished; a name ending in
    `.gd` is one of SCRIPTS instead."""
    script = str(SCRIPTS / name) if name.endswith(".gd") else f"res://addons/tha4bridge/tools/{name}.gd"
    cmd = [GODOT, "--path", str(GODOT3), "-s", script, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    # A script that does not parse still exits 0 under -s: never mistake that for success.
    assert "SCRIPT ERROR" not in done.stderr, done.stderr
    return done


def json_lines(done: subprocess.CompletedProcess) -> list[dict]:
    """The JSON objects a tool or test script printed, one a line (the banner and the rest skipped)."""
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def said(done: subprocess.CompletedProcess) -> str:
    """The tool's own line: its last line on stdout (Godot prints its banner first)."""
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def straight(pixels: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA8 to straight alpha exactly as the addon's FrameMessage.to_straight does it:
    round(c * 255 / a) half up, in integers ((c * 510 + a) // (2 a)), no colour under alpha 0."""
    a = pixels[..., 3:4].astype(np.int64)
    c = pixels[..., :3].astype(np.int64)
    rgb = np.where(a == 0, 0, np.minimum(255, (c * 510 + a) // np.maximum(2 * a, 1)))
    return np.concatenate([rgb.astype(np.uint8), pixels[..., 3:4]], axis=-1)

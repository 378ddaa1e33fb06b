"""The expression library's files: shipped, a user folder adding and overriding, bad files refused with one
line naming file, entry and problem (also by the daemon at start-up)."""
from __future__ import annotations

import subprocess
import sys
import wave

import numpy as np
import pytest

from tha4bridge.expressions import ExpressionFileError, load_library



def write_toml(folder, name, text):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("text, problem", [
    ("[joy\nx = 1", "not valid TOML"),
    ("joy = 3", "entry 'joy' must be a table"),
    ("[grin]\nmouth_grin = 1.0", "entry 'grin' names unknown pose parameter 'mouth_grin'"),
    ("[grin]\nmouth_aaa = 1.5", "entry 'grin' parameter 'mouth_aaa' must be a number in [0, 1]"),
    ("[grin]\nmouth_aaa = 'wide'", "entry 'grin' parameter 'mouth_aaa' must be a number"),
    ("[calm]\nbreathing = 0.5", "entry 'calm' may not set 'breathing'"),
])
def test_a_bad_file_is_refused_naming_file_entry_and_problem(tmp_path, text, problem):
    folder = write_toml(tmp_path / "expr", "mine.toml", text)
    with pytest.raises(ExpressionFileError) as e:
        load_library(folder)
    assert str(e.value).startswith(str(folder / "mine.toml")) and problem in str(e.value)
    assert "\n" not in str(e.value)


def test_a_user_folder_adds_and_overrides(tmp_path):
    shipped = load_library()
    folder = write_toml(tmp_path / "expr", "a.toml", "[joy]\nmouth_aaa = 1.0\n[tilt]\nhead_x = 0.4\n")
    lib = load_library(folder)
    assert lib["joy"] == {"mouth_aaa": 1.0} and lib["tilt"] == {"head_x": 0.4}
    assert lib["sadness"] == shipped["sadness"] and len(lib) == len(shipped) + 1
    # the shipped faces touch the face only: no entry turns the head
    assert not any(k.startswith(("head_", "neck_", "body_")) for e in shipped.values() for k in e)


def test_the_daemon_refuses_a_bad_expression_file_at_start_up(tmp_path):
    folder = write_toml(tmp_path / "expr", "bad.toml", "[grin]\nmouth_grin = 1.0\n")
    r = subprocess.run([sys.executable, "-m", "tha4bridge.cli", "serve", "--no-trackers", "--device", "cpu",
                        "--control", "tcp://127.0.0.1:0", "--frames", "tcp://127.0.0.1:0",
                        "--expressions", str(folder)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if "bad.toml" in ln]
    assert len(lines) == 1 and "entry 'grin' names unknown pose parameter 'mouth_grin'" in lines[0], r.stderr


def bursts(path, rate=16000, pattern=(0.4, 0.4) * 3):
    """A WAV of alternating loud (a 220 Hz tone) and silent stretches, `pattern` seconds each, loud first."""
    chunks = []
    for i, seconds in enumerate(pattern):
        t = np.arange(int(seconds * rate)) / rate
        chunks.append(0.6 * np.sin(2 * np.pi * 220 * t) if i % 2 == 0 else np.zeros_like(t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes((np.concatenate(chunks) * 32767).astype("<i2").tobytes())

"""Issue 15 item 11: what a new user reads first points at things that exist and says every default."""
import re
from pathlib import Path

import typer.main

from tha4bridge.cli import app

ROOT = Path(__file__).resolve().parents[1]


def _serve():
    return typer.main.get_command(app).commands["serve"]


def test_files_named_in_serve_help_and_readme_exist():
    cmd = _serve()
    texts = [cmd.help] + [p.help or "" for p in cmd.params]
    readme = (ROOT / "README.md").read_text()
    named = set()
    for text in texts + [readme]:
        named |= set(re.findall(r"\b((?:protocols|examples)/[\w./-]+\.(?:md|json))", text))
    assert {"examples/poses.json", "protocols/osc.md"} <= named
    missing = [n for n in named if not (ROOT / n).exists()]
    assert not missing, missing


def test_readme_covers_the_first_hour():
    readme = (ROOT / "README.md").read_text()
    for needle in ("tha4bridge params", "examples/poses.json", "No iPhone?", "VSeeFace", "XR Animator",
                   "VMagicMirror", "headers.json"):
        assert needle in readme, needle

"""The two addons' sources: Godot 4's pass gdtoolkit's parser and linter, Godot 3's pass the engine's own
parser, and both expose the same nodes, properties, signals and methods."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from .api import surface
from .util import ADDON3, ADDON4, ENV, GODOT, GODOT3, GODOT4, needs_godot

GD4 = sorted(GODOT4.rglob("*.gd"))
needs_gdtoolkit = pytest.mark.skipif(importlib.util.find_spec("gdtoolkit") is None,
                                     reason="gdtoolkit is not installed (pip install 'tha4bridge[test]')")


def _gdtoolkit(tool: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"gdtoolkit.{tool}", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_the_two_addons_hold_the_same_files():
    files3 = sorted(p.relative_to(ADDON3) for p in ADDON3.rglob("*") if p.is_file())
    files4 = sorted(p.relative_to(ADDON4) for p in ADDON4.rglob("*") if p.is_file())
    assert files3 == files4
    assert {"plugin.cfg", "plugin.gd", "README.md", "frame_client.gd", "control.gd", "tools/snapshot.gd",
            "tools/pose.gd"} <= {str(p) for p in files3}
    assert (ADDON3 / "plugin.cfg").read_text() == (ADDON4 / "plugin.cfg").read_text()
    for project in (GODOT3, GODOT4):
        assert (project / "project.godot").is_file() and (project / "demo" / "demo.tscn").is_file()


@needs_gdtoolkit
def test_godot4_sources_parse_lint_and_are_formatted():
    assert len(GD4) >= 10
    for tool, args in (("parser", ()), ("linter", ()), ("formatter", ("--check",))):
        done = _gdtoolkit(tool, *args, *GD4)
        assert done.returncode == 0, f"gd{tool}:\n{done.stdout}{done.stderr}"


@needs_gdtoolkit
def test_the_godot4_parser_rejects_godot3_syntax():
    """The check above means something: the Godot 3 addon does not pass it (`export var`, `yield`...)."""
    done = _gdtoolkit("parser", ADDON3 / "frame_client.gd")
    assert done.returncode != 0 and "export" in done.stdout + done.stderr


@pytest.mark.parametrize("script", ["frame_client.gd", "control.gd"])
def test_both_versions_expose_the_same_node(script):
    g3, g4 = surface(ADDON3 / script), surface(ADDON4 / script)
    assert g3 == g4
    assert g3["class_name"] == {"frame_client.gd": "Tha4FrameClient", "control.gd": "Tha4Control"}[script]
    if script == "frame_client.gd":
        assert g3["signals"] == {"frame_received": ("header",), "state_changed": ("state", "reason")}
        assert {"url", "stream", "token", "format", "target"} <= set(g3["exports"])
        assert {"texture", "image", "material", "header", "state"} <= set(g3["properties"])
    else:
        assert g3["signals"]["request_failed"] == ("command", "code", "message")
        assert {"set_pose", "set_expression", "talk", "mouth", "inject", "release", "get_pose",
                "expressions"} <= set(g3["methods"])
        assert g3["methods"]["inject"] == (("source", None), ("values", None), ("weight", "1.0"),
                                           ("mode", '"set"'), ("timeout", "1.0"))


def test_both_versions_tools_take_the_same_arguments():
    for tool in ("snapshot", "pose", "watch"):
        def keys(addon):
            text = (addon / "tools" / f"{tool}.gd").read_text()
            return text[text.index("Args.parse("):].split(")")[0]
        assert keys(ADDON3) == keys(ADDON4), tool


@needs_godot
def test_every_godot3_script_passes_the_engines_parser():
    """Under -s a script that does not parse still exits 0: --check-only is what says so (exit 1)."""
    scripts = sorted(GODOT3.rglob("*.gd"))
    assert len(scripts) >= 10
    for script in scripts:
        res = "res://" + script.relative_to(GODOT3).as_posix()
        done = subprocess.run([GODOT, "--check-only", "--path", str(GODOT3), "-s", res], capture_output=True,
                              text=True, timeout=30, env=ENV)
        assert done.returncode == 0 and "SCRIPT ERROR" not in done.stderr, f"{res}:\n{done.stderr}"

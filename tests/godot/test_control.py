"""Tha4Control (Godot 3) over the real daemon's JSON API, and the demo scene showing the character."""
from __future__ import annotations

import pytest

from .util import json_lines, needs_godot, tool

pytestmark = needs_godot


def test_every_control_method_reaches_the_daemon(served):
    done = tool("control_calls.gd", f"url=http://127.0.0.1:{served.port}")
    assert done.returncode == 0, done.stdout + done.stderr
    steps = {line["step"]: line for line in json_lines(done)}
    reply = {name: line.get("reply") for name, line in steps.items()}
    assert reply["set_pose"]["ok"] and reply["set_pose"]["applied"] == 2 and reply["set_pose"]["stream"] == ["demo"]
    assert reply["get_pose"]["pose"]["mouth_aaa"] == pytest.approx(0.25)
    assert reply["get_pose"]["pose"]["eye_wink_left"] == 1 and reply["get_pose"]["hold_remaining"] == -1
    assert {"joy", "neutral", "wink_left"} <= set(reply["expressions"]["expressions"])
    assert reply["set_expression"]["name"] == "joy" and reply["inject"]["source"] == "godot"
    assert reply["talk"]["on"] is True and reply["mouth"]["level"] == pytest.approx(0.8)
    layers = reply["layers"]["layers"]  # what the daemon composes now: each call above is a layer
    assert layers["expression"]["name"] == "joy"
    assert layers["injected"]["sources"] == ["godot"] and layers["injected"]["params"]["head_x"] == pytest.approx(0.5)
    assert layers["talking"]["mode"] == "level"
    assert reply["release_source"]["released"] == ["godot"]
    assert reply["bad_pose"] == {"ok": False, "code": "bad_pose", "http_status": 400,
                                 "error": "unknown pose parameter(s): no_such_parameter"}
    assert steps["request_failed"] == {"step": "request_failed", "command": "set_pose", "code": "bad_pose",
                                       "message": "unknown pose parameter(s): no_such_parameter"}
    assert reply["talk_off"]["on"] is False and reply["release"]["ok"]
    pose = served.ctl.get_pose("demo")  # the daemon agrees, seen from its other door
    assert pose["layers"]["injected"]["sources"] == [] and pose["layers"]["expression"]["name"] == "joy"


@pytest.mark.parametrize("stream, blend", [("demo", 0), ("pm", 4)])
def test_the_demo_scene_shows_the_character_and_the_expression_buttons(served, stream, blend):
    # The viewer's URL as pasted from the banner: both nodes take the stream from it.
    done = tool("demo_check.gd", f"url=http://127.0.0.1:{served.port}/view/{stream}")
    assert done.returncode == 0, done.stdout + done.stderr
    (shown,) = json_lines(done)
    assert shown["frames"] >= 1 and shown["texture"] == [512, 512] and shown["transparent"] is True
    assert shown["status"].startswith("frame ") and "(rgba," in shown["status"]
    # frame_received's header: the frame's stream, its 45-number pose, its alpha and its times
    assert shown["header"] == {"stream": stream, "poses": 45, "times": True,
                               "alpha": "straight" if stream == "demo" else "premultiplied"}
    # CanvasItemMaterial.BLEND_MODE_MIX for straight frames, BLEND_MODE_PREMULT_ALPHA for premultiplied ones
    assert shown["material_blend"] == blend
    assert len(shown["buttons"]) == len(served.ctl.expressions()) and "joy" in shown["buttons"]


def test_the_frame_client_understands_the_addresses_users_paste():
    done = tool("address_check.gd")
    assert done.returncode == 0, done.stdout + done.stderr
    feed = {line["url"]: line["feed"] or line["error"] for line in json_lines(done)}
    assert feed == {
        "ws://127.0.0.1:8080": "ws://127.0.0.1:8080/ws/frames/demo?format=rgba",
        # the banner's viewer URL: its stream and token are used
        "http://localhost:8080/view/alice?token=abc": "ws://localhost:8080/ws/frames/alice?format=rgba&token=abc",
        # another machine: lossless WebP instead of 1 MiB raw frames (the browser viewer's choice)
        "192.168.1.20:8080": "ws://192.168.1.20:8080/ws/frames/demo?format=webp&token=t%2F1",
        "wss://example.org/ws/frames/bob?format=png": "wss://example.org/ws/frames/bob?format=webp",
        "ftp://127.0.0.1:8080": "the daemon's URL must start with http://, https://, ws:// or wss://, "
                                "got ftp://127.0.0.1:8080",
        "http://[::1]:9000/panel/x y": "ws://[::1]:9000/ws/frames/x%20y?format=rgba",
        "8080": "ws://127.0.0.1:8080/ws/frames/demo?format=rgba",  # a port alone, as `serve --http` takes it
    }

"""The frame client's connection: 1 MiB raw frames arrive (Godot's 64 KB buffer would drop them without a
word), a daemon restarted mid-run is reconnected to, and a daemon beyond loopback is reached with its token."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.lines import Lines
from tests.web.util import WebServed

from .util import ENV, GODOT, GODOT3, json_lines, needs_godot, said, tool

pytestmark = needs_godot
FRAME_BYTES = 512 * 512 * 4


@pytest.fixture(scope="module")
def beyond(tmp_path_factory):
    """A daemon bound to every interface (so it wants its token), reached at 127.0.0.1 only."""
    s = WebServed(log_dir=tmp_path_factory.mktemp("beyond"), host="0.0.0.0")
    yield s
    s.stop()


def test_raw_1mib_frames_arrive_and_the_default_buffer_would_drop_them(beyond):
    url = f"url=ws://127.0.0.1:{beyond.port}/ws/frames/demo"
    done = tool("watch", url, f"token={beyond.token}", "frames=3", "seconds=15")
    frames = [e for e in json_lines(done) if e["event"] == "frame"]
    assert len(frames) == 3 and all(f["encoding"] == "rgba" and f["bytes"] == FRAME_BYTES for f in frames)
    # The trap the addon avoids: at Godot's default 64 KB nothing arrives, and nothing says so.
    done = tool("watch", url, f"token={beyond.token}", "seconds=1.5", "buffer_mb=0.0625")
    events = json_lines(done)
    assert {"event": "state", "state": "connected", "reason": ""} in events
    assert not [e for e in events if e["event"] == "frame"] and events[-1]["event"] == "summary"
    assert events[-1]["frames"] == 0


class Watch:
    """watch.gd running in the background; its JSON lines as they come."""

    def __init__(self, *args: str):
        cmd = [GODOT, "--path", str(GODOT3), "-s", "res://addons/tha4bridge/tools/watch.gd", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
        self.out = Lines(self.proc)

    def until(self, predicate, timeout: float, what: str) -> list[dict]:
        """Events from here up to and including the first that matches."""
        return self.out.json_until(predicate, timeout, f"watch.gd: {what}")

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


@pytest.mark.slow  # two daemon start-ups
def test_a_restarted_daemon_is_reconnected_to(tmp_path):
    first = WebServed(log_dir=tmp_path)  # an OS-chosen port; the restart comes back on the same one
    port = first.port
    watch = Watch(f"url=ws://127.0.0.1:{port}/ws/frames/demo", "seconds=120")
    try:
        before = watch.until(lambda e: e["event"] == "frame", 20, "a frame from the first daemon")
        first.stop()
        gone = watch.until(lambda e: e["event"] == "state" and e["state"] == "waiting", 20, "waiting once it stopped")
        assert gone[-1]["reason"] == "the daemon closed the frame feed"
        # While it is away the client says why, in words, and keeps trying.
        watch.until(lambda e: e.get("reason", "").startswith("no daemon answers at http://127.0.0.1:"), 20,
                    "the reason while no daemon answers")
        second = WebServed(log_dir=tmp_path, port=port)
        try:
            after = watch.until(lambda e: e["event"] == "frame", 30, "a frame from the restarted daemon")
            assert [e["state"] for e in after if e["event"] == "state"][-1] == "connected"
            assert second.pid != first.pid and before[-1]["seq"] >= 0
        finally:
            second.stop()
    finally:
        watch.stop()
        if first.proc.poll() is None:
            first.stop()


def test_beyond_loopback_with_the_token(beyond, tmp_path):
    s = beyond
    assert s.token, "the banner prints a token when bound beyond loopback"
    url = f"url=ws://127.0.0.1:{s.port}/ws/frames/demo"
    out = tmp_path / "frame.png"
    done = tool("snapshot", url, f"out={out}")
    assert done.returncode == 1 and not out.exists()
    assert said(done) == "this server is reachable from the network: add ?token= (printed by `serve`) to the URL"
    done = tool("snapshot", url, f"out={out}", f"token={s.token}", "format=webp")
    assert done.returncode == 0 and "webp" in said(done), done.stdout
    assert np.asarray(Image.open(out)).shape == (512, 512, 4)
    done = tool("pose", f"url=http://127.0.0.1:{s.port}", f"token={s.token}", "eye_wink_right=1")
    assert done.returncode == 0, done.stdout
    assert s.ctl.get_pose("demo")["pose"]["eye_wink_right"] == 1.0
    done = tool("pose", f"url=http://127.0.0.1:{s.port}", "token=wrong", "eye_wink_right=0")
    assert done.returncode == 1 and said(done).endswith("(unauthorized)")

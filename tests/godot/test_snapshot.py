"""The Godot 3 addon in a real engine against a real daemon: snapshot.gd's PNG is the daemon's frame."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from tha4bridge.client import FrameSubscriber
from tha4bridge.pose import PARAMETER_NAMES
from tha4bridge.web.feed import straight as server_straight

from .util import needs_godot, said, straight, tool

pytestmark = needs_godot


class Recorder:
    """Every frame of one stream that the Python client receives meanwhile, by seq."""

    def __init__(self, served, stream: str):
        self.sub = FrameSubscriber(served.frames, stream)
        self.frames: dict[int, object] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            f = self.sub.recv(timeout=0.2)
            if f is not None:
                self.frames[f.seq] = f

    def __enter__(self):
        self.thread.start()
        # subscribed before the frame Godot will take: a frame has arrived (an unchanged pose is re-rendered at
        # the idle rate, so one comes whether or not anything moves)
        end = time.monotonic() + 20
        while not self.frames:
            assert time.monotonic() < end, "the Python client received no frame in 20 s (not subscribed?)"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.sub.close()

    def wait_for(self, seq: int, timeout: float = 5.0):
        end = time.monotonic() + timeout
        while seq not in self.frames and time.monotonic() < end:
            time.sleep(0.02)
        assert seq in self.frames, f"the Python client never saw frame {seq} (it saw {sorted(self.frames)[-5:]})"
        return self.frames[seq]


def snapshot(served, stream: str, out, *extra: str) -> tuple[int, np.ndarray]:
    done = tool("snapshot", f"url=ws://127.0.0.1:{served.port}/ws/frames/{stream}", f"out={out}", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    line = said(done)
    assert line.startswith("saved frame "), line
    return int(line.split()[2]), np.asarray(Image.open(out))


@pytest.mark.parametrize("stream, fmt", [("demo", "auto"), ("pm", "auto"), ("pm", "webp")])
def test_snapshot_equals_the_python_clients_frame(served, tmp_path, stream, fmt):
    """raw: byte for byte after the same alpha conversion; WebP: the server's straight-alpha image."""
    served.ctl.set_pose(stream, {"head_x": 0.4, "eye_wink_left": 1.0, "mouth_aaa": 0.7}, hold=0)
    with Recorder(served, stream) as rec:
        seq, png = snapshot(served, stream, tmp_path / "frame.png", f"format={fmt}")
        frame = rec.wait_for(seq)
    assert png.shape == (512, 512, 4) and png.dtype == np.uint8
    assert frame.header["pose"][PARAMETER_NAMES.index("head_x")] == pytest.approx(0.4), "the frame of that pose"
    expected = frame.pixels
    if frame.header["alpha"] == "premultiplied":
        expected = straight(expected) if fmt == "auto" else server_straight(expected)
        assert not np.array_equal(expected, frame.pixels), "a premultiplied frame changes when made straight"
    assert np.array_equal(png, expected), f"{stream}/{fmt}: {np.count_nonzero(png != expected)} bytes differ"
    assert 0 < np.count_nonzero(png[..., 3]) < 512 * 512, "the character on a transparent background"


def test_a_wrong_stream_name_gives_one_line_and_exit_1(served, tmp_path):
    done = tool("snapshot", f"url=ws://127.0.0.1:{served.port}/ws/frames/nobody", f"out={tmp_path / 'x.png'}")
    assert done.returncode == 1
    assert said(done) == "the daemon has no stream named 'nobody' (its streams: demo, pm)"
    assert not (tmp_path / "x.png").exists()


def test_no_daemon_gives_one_line_and_exit_1(tmp_path):
    from tests.daemon.util import refused_port

    with refused_port() as port:
        done = tool("snapshot", f"url=ws://127.0.0.1:{port}/ws/frames/demo", f"out={tmp_path / 'x.png'}")
    assert done.returncode == 1
    assert said(done) == f"no daemon answers at http://127.0.0.1:{port} (is `tha4bridge serve --http` running there?)"


def test_a_bad_command_line_gives_one_line_and_exit_2(tmp_path):
    done = tool("snapshot", "url=ws://127.0.0.1:1/ws/frames/demo")
    assert done.returncode == 2 and said(done) == "snapshot needs url=ws://HOST:PORT/ws/frames/NAME and out=FILE.png"
    done = tool("snapshot", "url=ws://127.0.0.1:1/ws/frames/demo", f"out={tmp_path / 'x.png'}", "timeout=soon")
    assert done.returncode == 2 and said(done) == "timeout must be a number, got 'soon'"
    done = tool("snapshot", "url=ws://127.0.0.1:1/ws/frames/demo", "colour=red")
    assert done.returncode == 2 and said(done).startswith("unknown argument 'colour' (this tool takes url, out")


def test_pose_tool_changes_the_next_frame(served, tmp_path):
    mouth = PARAMETER_NAMES.index("mouth_aaa")
    served.ctl.set_pose("demo", {"mouth_aaa": 0.0, "eye_wink_left": 0.0}, hold=0)
    _, before = snapshot(served, "demo", tmp_path / "before.png")
    done = tool("pose", f"url=http://127.0.0.1:{served.port}", "stream=demo", "hold=0", "mouth_aaa=1",
                "eye_wink_left=1")
    assert done.returncode == 0 and said(done) == "set 2 parameters on demo (hold 0 s)", done.stdout
    assert served.ctl.get_pose("demo")["pose"]["mouth_aaa"] == 1.0
    with Recorder(served, "demo") as rec:
        seq, after = snapshot(served, "demo", tmp_path / "after.png")
        frame = rec.wait_for(seq)
    assert frame.header["pose"][mouth] == 1.0 and np.array_equal(after, frame.pixels)
    assert np.count_nonzero(np.any(before != after, axis=-1)) > 200, "an open mouth and a closed eye show"


def test_pose_tool_refusals_are_one_line(served):
    base = f"url=http://127.0.0.1:{served.port}"
    done = tool("pose", base, "stream=demo", "mouth_wide=1")
    assert done.returncode == 1 and said(done) == "unknown pose parameter(s): mouth_wide (bad_pose)"
    done = tool("pose", base, "mouth_aaa=1")  # no stream= while the daemon runs two: its own sentence
    assert done.returncode == 1 and said(done) == "say which stream ('stream' field): one of demo, pm (bad_request)"
    done = tool("pose", base, "stream=nobody", "mouth_aaa=1")
    assert done.returncode == 1 and said(done).endswith("(unknown_stream)") and "nobody" in said(done)
    done = tool("pose", base, "mouth_aaa=wide")
    assert done.returncode == 2 and said(done) == "mouth_aaa must be a number, got 'wide'"

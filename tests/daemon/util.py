"""Running a real `tha4bridge serve` for tests: a subprocess on free loopback ports, its log in the test folder."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tha4bridge.client import Control, ControlError, FrameSubscriber
from tha4bridge.transport.ring import ring_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, *args, log_dir: Path, trackers: bool = False):
        self.control = f"tcp://127.0.0.1:{free_port()}"
        self.frames = f"tcp://127.0.0.1:{free_port()}"
        self.log = log_dir / f"serve-{free_port()}.log"
        # trackers on OS-chosen UDP ports (hello reports them); the calibration file stays in the test folder
        self.calibration = log_dir / "calibration.json"
        tracker_args = (["--vmc-port", "0", "--ifm-port", "0", "--calibration-file", str(self.calibration)]
                        if trackers else ["--no-trackers"])
        cmd = [sys.executable, "-m", "tha4bridge.cli", "serve", *tracker_args, "--device", "cpu",
               "--control", self.control, "--frames", self.frames, *args]
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        self.ctl = Control(self.control, timeout=5.0)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                self.hello = self.ctl.hello(client="pytest")
                break
            except ControlError:
                if time.monotonic() > deadline:
                    raise
        self.pid = self.proc.pid

    def ring_files(self):
        return sorted(ring_dir().glob(f"tha4bridge-{self.pid}-*.ring"))

    def stop(self, sig=signal.SIGTERM, timeout=20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.ctl.close()
        return rc


def frame_matching(sub: FrameSubscriber, predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        f = sub.recv(timeout=max(end - time.monotonic(), 0.01))
        if f is not None and predicate(f):
            return f
    raise AssertionError("no matching frame arrived")

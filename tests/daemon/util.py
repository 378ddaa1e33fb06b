"""Running a real `tha4bridge serve` for tests: a subprocess on free loopback ports, its log in the test folder."""
from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tha4bridge.client import Control, ControlError, FrameSubscriber
from tha4bridge.transport.ring import ring_dir


class refused_port:
    """A loopback TCP port where nothing listens, for as long as the `with` lasts: bound by this socket but never
    listening, so a connection to it is refused and no other process can take it meanwhile."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


_logs = itertools.count()


class Served:
    def __init__(self, *args, log_dir: Path, trackers: bool = False):
        # port 0: the daemon binds OS-chosen ports and its banner says which (an explicit --control/--frames in
        # `args` comes later on the command line and wins); no port is chosen by bind-then-close
        self.control = self.frames = "tcp://127.0.0.1:0"
        self.log = log_dir / f"serve-{os.getpid()}-{next(_logs)}.log"
        # trackers on OS-chosen UDP ports (hello reports them); the calibration file stays in the test folder
        self.calibration = log_dir / "calibration.json"
        tracker_args = (["--vmc-port", "0", "--ifm-port", "0", "--calibration-file", str(self.calibration)]
                        if trackers else ["--no-trackers"])
        cmd = [sys.executable, "-m", "tha4bridge.cli", "serve", *tracker_args, "--device", "cpu",
               "--control", self.control, "--frames", self.frames, *args]
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.ctl = None
        try:
            deadline = time.monotonic() + 120
            self.control, self.frames = self._banner_endpoints(deadline)
            self.ctl = Control(self.control, timeout=5.0)
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()}")
                try:
                    self.hello = self.ctl.hello(client="pytest")
                    break
                except ControlError:
                    if time.monotonic() > deadline:
                        raise
        except BaseException:  # a daemon that did not come up is not left running, nor its client open
            self.stop(signal.SIGKILL)
            raise

    def _banner_endpoints(self, deadline: float) -> tuple[str, str]:
        """The control and frame endpoints the daemon's banner reports (printed, flushed, in one piece once it
        serves), waiting for it until `deadline`."""
        while True:
            text = self.log.read_text()
            m = re.search(r"^  control: (\S+)\n  frames:  (\S+) ", text, re.M)
            if m and re.search(r"^  trackers: .*\n", text, re.M):
                return m.group(1), m.group(2)
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode} before its banner:\n{text}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"no banner from the daemon within its start-up deadline; its log:\n{text}")
            time.sleep(0.05)  # polling the log file: the banner is the event waited for

    def ring_files(self):
        return sorted(ring_dir().glob(f"tha4bridge-{self.pid}-*.ring"))

    def stop(self, sig=signal.SIGTERM, timeout=20.0) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            return self.proc.wait(timeout)
        finally:
            if self.ctl is not None:
                self.ctl.close()


def frame_matching(sub: FrameSubscriber, predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        f = sub.recv(timeout=max(end - time.monotonic(), 0.01))
        if f is not None and predicate(f):
            return f
    raise AssertionError("no matching frame arrived")

"""Builds the Unity package's C# with Mono's `mcs` (C# 7.2) for the tests and the benchmark.

Shared by tests/unity/test_*.py and benchmarks/bench_csharp.py; not a test module itself.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.shared import LAMBDA_00

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "unity_sample"
CORE_SOURCES = PACKAGE / "Runtime" / "Core"
UNITY_SOURCES = PACKAGE / "Runtime" / "Unity"
SAMPLE_SOURCES = PACKAGE / "Samples~" / "BasicViewer"
CSHARP_TESTS = ROOT / "tests" / "unity" / "csharp"
STUDENT = LAMBDA_00

MISSING = [tool for tool in ("mcs", "mono") if shutil.which(tool) is None]
SKIP_REASON = (f"{' and '.join(MISSING)} not installed: apt-get install -y --no-install-recommends "
               "mono-mcs mono-devel")


def mcs(out: Path, sources: list[Path], refs: list[Path] = (), target: str = "library",
        unsafe: bool = False, warnaserror: bool = False) -> str:
    """Compile with the language level Unity's code must stay within here; returns the compiler output."""
    cmd = ["mcs", "-langversion:7.2", "-optimize+", f"-target:{target}", f"-out:{out}", "-r:System.Core.dll"]
    if unsafe:
        cmd.append("-unsafe")
    if warnaserror:
        cmd.append("-warnaserror+")
    cmd += [f"-r:{r}" for r in refs]
    cmd += [str(s) for s in sources]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"mcs failed for {out.name}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def build_core(out_dir: Path) -> Path:
    core = out_dir / "Tha4Bridge.Core.dll"
    mcs(core, sorted(CORE_SOURCES.glob("*.cs")), unsafe=True, warnaserror=True)
    return core


class Daemon:
    """A real `tha4bridge serve` on free ports; stopped (ring files removed) on close."""

    def __init__(self, student: str, transport: str = "shm", idle_fps: float = 20.0, extra: list[str] = (),
                 control: str | None = None, frames: str | None = None):
        # port 0 unless given: the daemon binds OS-chosen ports and its banner says which (_wait_ready reads them)
        self.control = control or "tcp://127.0.0.1:0"
        self.frames = frames or "tcp://127.0.0.1:0"
        cmd = [sys.executable, "-m", "tha4bridge.cli", "serve", "--student", student, "--control", self.control,
               "--frames", self.frames, "--transport", transport, "--no-trackers", "--idle-fps", str(idle_fps),
               "--device", "cpu", *extra]
        # A file, not a pipe: nobody reads the daemon's log while it runs, and a full pipe would block it.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        self.hello = self._wait_ready(timeout=90.0)
        self.stream = self.hello["streams"][0]["name"]

    @classmethod
    def on(cls, frames: str, control: str, student: str, **kw) -> "Daemon":
        """A daemon on given endpoints (e.g. a restart on the ports of one that stopped)."""
        return cls(student, frames=frames, control=control, **kw)

    def _wait_ready(self, timeout: float) -> dict:
        from tha4bridge.client import Control, ControlError

        deadline = time.monotonic() + timeout
        while not re.search(r"^  trackers: .*\n", self._log_so_far(), re.M):  # the banner: printed once it serves
            if self.proc.poll() is not None:
                raise RuntimeError(f"tha4bridge serve exited with {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"tha4bridge serve printed no banner in time:\n{self.output()}")
            time.sleep(0.05)  # polling its log file for the banner
        m = re.search(r"^  control: (\S+)\n  frames:  (\S+) ", self._log_so_far(), re.M)
        self.control, self.frames = m.group(1), m.group(2)
        with Control(self.control, timeout=1.0) as ctl:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"tha4bridge serve exited with {self.proc.returncode}:\n{self.output()}")
                try:
                    return ctl.hello(client="csharp-tests")
                except ControlError:
                    continue
        self.close()
        raise RuntimeError("tha4bridge serve did not answer hello in time")

    def _log_so_far(self) -> str:
        """The log as written so far, read with pread: a seek would move the running daemon's write offset too
        (the file description is shared)."""
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

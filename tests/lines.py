"""A child process's output read on a thread as it comes, so a test can wait for a line with a deadline (a bare
`readline` waits for ever on a process that hangs) and still show everything the process printed when it fails.

Used wherever a test waits on a tool's, client's or daemon's stdout: the C# watch tool, Godot's watch.gd, the
daemon's banner.
"""
from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Callable

import pytest


class Lines:
    """`proc`'s stdout (opened with text=True), line by line."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.text: list[str] = []  # every line taken so far, in order
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in iter(self.proc.stdout.readline, ""):
            self._queue.put(line)
        self._queue.put(None)  # the output ended

    def until(self, match: Callable[[str], bool], timeout: float, what: str) -> list[str]:
        """The lines from here up to and including the first that `match`es. Fails saying that `what` did not
        come within `timeout` seconds (or before the output ended), with the end of the output."""
        start, deadline = len(self.text), time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail(f"{what}: not within {timeout:g} s; the output so far ends:\n{self.tail()}")
            if line is None:
                self._queue.put(None)  # the end stays visible to the next wait
                pytest.fail(f"{what}: the output ended first ({self._status()}); it ends:\n{self.tail()}")
            self.text.append(line)
            if match(line):
                return self.text[start:]

    def next_line(self, timeout: float, what: str) -> str:
        """The next line (waited for as `until` waits)."""
        return self.until(lambda line: True, timeout, what)[-1]

    def json_until(self, match: Callable[[dict], bool], timeout: float, what: str) -> list[dict]:
        """`until` over the JSON lines (those starting with "{"): the JSON objects up to the first that matches."""
        got = self.until(lambda line: line.startswith("{") and match(json.loads(line)), timeout, what)
        return [json.loads(line) for line in got if line.startswith("{")]

    def rest(self, timeout: float) -> list[str]:
        """Every line, once the output has ended (the process has exited, or closed its stdout) or `timeout`
        seconds have passed: what a test reads after the process is done."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                return self.text
            if line is None:
                self._queue.put(None)
                return self.text
            self.text.append(line)

    def json(self) -> list[dict]:
        """The JSON objects among the lines taken so far."""
        return [json.loads(line) for line in self.text if line.startswith("{")]

    def tail(self, chars: int = 3000) -> str:
        return "".join(self.text)[-chars:]

    def _status(self) -> str:
        try:
            return f"exit status {self.proc.wait(timeout=5)}"
        except subprocess.TimeoutExpired:
            return "still running"

"""Ring files a dead daemon left behind (protocols/frames.md §2): found by their name and removed.

A daemon killed with SIGKILL cannot delete its ring files. The next daemon deletes those whose writer is gone:
its pid no longer runs, or (POSIX) nobody holds the shared flock every live daemon keeps on its rings, which
guards against a reused pid. Only ring files are touched, recognised by the name `ring_path` gives them.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .ring import ring_dir

_FILE_NAME = re.compile(r"^tha4bridge-(\d+)-([A-Za-z0-9_.-]{1,63})\.ring$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # no signal 0 there; a file still mapped by its owner cannot be deleted anyway
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _locked_by_someone(path: Path) -> bool:
    """POSIX: a live daemon holds a shared flock on its ring files (guards against pid reuse)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops our probe lock
    return False


def reclaim_stale(directory: Path | None = None) -> list[Path]:
    """Delete ring files whose writer is dead: pid not running, or (POSIX) nobody holding its lock."""
    directory = directory or ring_dir()
    removed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for path in entries:
        m = _FILE_NAME.match(path.name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid():
            continue  # ours (from an earlier generation in this process); replaced by its owner
        if _pid_alive(pid) and (_locked_by_someone(path) or not _has_flock()):
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def _has_flock() -> bool:
    try:
        import fcntl  # noqa: F401
        return True
    except ImportError:
        return False

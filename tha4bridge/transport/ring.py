"""The shared-memory frame ring (protocols/frames.md §2): `FrameRing` writes it, `RingReader` reads it.

A plain file mapped with `mmap` (never `multiprocessing.shared_memory`: its resource tracker unlinks
segments that other processes merely attached to). Only the daemon creates and deletes ring files.
Header fields are little-endian and fixed width so C# can read them with plain pointer arithmetic.
"""
from __future__ import annotations

import errno
import mmap
import os
import re
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"THA4RING"
VERSION_MAJOR = 1
VERSION_MINOR = 0  # a whole-frame ring is exactly the 1.0 layout
CROP_VERSION_MINOR = 1  # a crop's ring: 1.1, with its placement at offset 192 (protocols/frames.md)
HEADER_SIZE = 256
SLOT_ENTRY_SIZE = 64
PAGE = 4096
BUSY = 0xFFFF_FFFF_FFFF_FFFF
PIXEL_FORMATS = {"rgba8": 1}
ALPHA_MODES = {"straight": 0, "premultiplied": 1}


def check_alpha(alpha: str) -> None:
    """Refuse an alpha mode a ring cannot carry, in the sentence every option and request shows."""
    if alpha not in ALPHA_MODES:
        raise ValueError(f"--alpha must be straight or premultiplied, got {alpha!r}")
COLOR_SPACES = {"srgb": 1}
STATE_LIVE, STATE_CLOSED = 1, 2
DEFAULT_SLOTS = 4

# Global header, offsets 0..128 (the stream name follows at 128, 64 bytes; 192..256 reserved).
_HEADER = struct.Struct("<8sHHIQIIIIIIIIIIIIQQQQdQII")
assert _HEADER.size == 128
_HEADER_FIELDS = ("magic", "version_major", "version_minor", "header_size", "generation", "writer_pid", "state",
                  "width", "height", "row_stride", "pixel_format", "alpha_mode", "color_space", "slot_count",
                  "slot_table_offset", "slot_entry_size", "reserved0", "slot_stride", "slot_size",
                  "first_slot_offset", "file_size", "created_at", "latest_seq", "latest_slot", "reserved1")
_NAME_OFFSET, _NAME_SIZE = 128, 64
# Since ring 1.1, a crop's place in the whole frame: region_x, region_y, full_width, full_height (zeros: whole).
_PLACEMENT_OFFSET, _PLACEMENT = 192, struct.Struct("<IIII")
PLACEMENT_FIELDS = ("region_x", "region_y", "full_width", "full_height")
_OFF_STATE = 28
_OFF_LATEST_SEQ = 112
_OFF_LATEST_SLOT = 120
_SLOT_TIMES = struct.Struct("<ddd")  # t_pose, t_render_start, t_render_end at slot entry + 8

# a name made only of dots ("." or "..") reads as a path in logs and tools that join it: refused
STREAM_NAME = re.compile(r"^(?!\.+$)[A-Za-z0-9_.-]{1,63}$")
STREAM_NAME_RULE = "must be 1-63 characters of A-Z a-z 0-9 _ . - and not only dots"


class RingError(ValueError):
    """A ring file that cannot be read (missing, wrong magic, another major version), or a ring folder that
    cannot hold one."""


RING_DIR_ENV = "THA4BRIDGE_RING_DIR"


def ring_dir() -> Path:
    """Where ring files live (protocols/frames.md §2): the folder named by THA4BRIDGE_RING_DIR when it is set, else
    /dev/shm on Linux (tmpfs), the temp folder elsewhere. A daemon reclaims stale files only in its own folder, so
    daemons (or test runs) with folders of their own never reclaim each other's."""
    chosen = _named_ring_dir()
    if chosen is not None:
        return chosen
    shm = Path("/dev/shm")
    if sys.platform.startswith("linux") and shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def _named_ring_dir() -> Path | None:
    """The folder THA4BRIDGE_RING_DIR names, or None when it is unset or blank."""
    chosen = os.environ.get(RING_DIR_ENV, "").strip()
    return Path(chosen).expanduser() if chosen else None


def check_ring_dir() -> Path:
    """`ring_dir()`, once it is known to be a folder this process can create files in (the daemon checks it at
    start, so a mistyped THA4BRIDGE_RING_DIR is one sentence, not an error about the first ring file)."""
    folder = ring_dir()
    named = f"{RING_DIR_ENV}={folder}" if _named_ring_dir() is not None else str(folder)
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "no such folder"
        raise RingError(f"{named}: {problem} (ring files, the shared-memory frames, are made there)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RingError(f"{named}: this user cannot create files in that folder (ring files are made there)")
    return folder


def ring_path(stream: str, pid: int | None = None, directory: Path | None = None) -> Path:
    return (directory or ring_dir()) / f"tha4bridge-{os.getpid() if pid is None else pid}-{stream}.ring"


def safe_stream_name(name: str) -> str:
    """A folder name → a valid stream name (other characters become `_`)."""
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:63]
    return s if STREAM_NAME.match(s) else "stream"


@dataclass
class RingLayout:
    width: int
    height: int
    slot_count: int = DEFAULT_SLOTS

    @property
    def row_stride(self) -> int:
        return self.width * 4

    @property
    def slot_size(self) -> int:
        return self.height * self.row_stride

    @property
    def slot_stride(self) -> int:
        return -(-self.slot_size // PAGE) * PAGE

    @property
    def first_slot_offset(self) -> int:
        return -(-(HEADER_SIZE + self.slot_count * SLOT_ENTRY_SIZE) // PAGE) * PAGE

    @property
    def file_size(self) -> int:
        return self.first_slot_offset + self.slot_count * self.slot_stride

    def slot_offset(self, slot: int) -> int:
        return self.first_slot_offset + slot * self.slot_stride


def pack_header(layout: RingLayout, stream: str, generation: int, pid: int, alpha: str,
                created_at: float, state: int = STATE_LIVE, latest_seq: int = 0, latest_slot: int = 0,
                magic: bytes = MAGIC, placement: tuple[int, int, int, int] | None = None) -> bytes:
    """The 256-byte global header (also used to build the test vectors). `placement`: a crop's
    (region_x, region_y, full_width, full_height); None for a whole frame (the 1.0 layout, byte for byte)."""
    minor = VERSION_MINOR if placement is None else CROP_VERSION_MINOR
    head = _HEADER.pack(magic, VERSION_MAJOR, minor, HEADER_SIZE, generation, pid, state,
                        layout.width, layout.height, layout.row_stride, PIXEL_FORMATS["rgba8"],
                        ALPHA_MODES[alpha], COLOR_SPACES["srgb"], layout.slot_count, HEADER_SIZE,
                        SLOT_ENTRY_SIZE, 0, layout.slot_stride, layout.slot_size, layout.first_slot_offset,
                        layout.file_size, created_at, latest_seq, latest_slot, 0)
    name = stream.encode("utf-8")
    tail = _PLACEMENT.pack(*placement) if placement is not None else b""
    return (head + name + bytes(_NAME_SIZE - len(name)) + tail
            + bytes(HEADER_SIZE - _PLACEMENT_OFFSET - len(tail)))


def parse_header(buf) -> dict:
    """The global header as a dict (raises RingError on a wrong magic or major version)."""
    if len(buf) < HEADER_SIZE:
        raise RingError(f"ring header needs {HEADER_SIZE} bytes, got {len(buf)}")
    d = dict(zip(_HEADER_FIELDS, _HEADER.unpack_from(buf, 0)))
    if d["magic"] != MAGIC:
        raise RingError(f"not a tha4bridge ring (magic {d['magic']!r})")
    if d["version_major"] != VERSION_MAJOR:
        raise RingError(f"ring speaks frames protocol {d['version_major']}.x, this client speaks "
                        f"{VERSION_MAJOR}.x")
    d["magic"] = d["magic"].decode("ascii")
    d["stream"] = bytes(buf[_NAME_OFFSET:_NAME_OFFSET + _NAME_SIZE]).rstrip(b"\0").decode("utf-8")
    d.pop("reserved0"), d.pop("reserved1")
    if d["version_minor"] >= CROP_VERSION_MINOR:
        d.update(zip(PLACEMENT_FIELDS, _PLACEMENT.unpack_from(buf, _PLACEMENT_OFFSET)))
    return d


_last_generation = 0
_generation_lock = threading.Lock()


def _next_generation() -> int:
    """time.time_ns(), but strictly increasing within this process (clocks can be coarse, e.g. on Windows)."""
    global _last_generation
    with _generation_lock:
        _last_generation = max(time.time_ns(), _last_generation + 1)
        return _last_generation


class FrameRing:
    """The writer side of one stream's ring. Not thread-safe: one render thread writes."""

    def __init__(self, stream: str, width: int, height: int, alpha: str = "straight",
                 slot_count: int = DEFAULT_SLOTS, directory: Path | None = None,
                 placement: tuple[int, int, int, int] | None = None):
        if not STREAM_NAME.match(stream):
            raise ValueError(f"stream name {stream!r} {STREAM_NAME_RULE}")
        if slot_count < 3:
            raise ValueError("a ring needs at least 3 slots")
        check_alpha(alpha)
        self.stream, self.alpha = stream, alpha
        self.layout = RingLayout(width, height, slot_count)
        self.path = ring_path(stream, directory=directory)
        self.generation = _next_generation()
        self.seq = 0
        try:
            self.path.unlink()  # a leftover of ours (same pid) can only be stale
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        try:
            os.ftruncate(fd, self.layout.file_size)
            if hasattr(os, "posix_fallocate"):
                # Reserve the pages now: writing into a sparse tmpfs file that cannot grow (a full /dev/shm,
                # 64 MB by default in Docker) kills the process with SIGBUS; this fails cleanly instead.
                try:
                    os.posix_fallocate(fd, 0, self.layout.file_size)
                except OSError as e:
                    if e.errno in (errno.ENOSPC, errno.EFBIG):
                        raise OSError(e.errno, f"{self.path}: no room for a {self.layout.file_size} byte ring "
                                               f"({e.strerror}); free space in {self.path.parent} or name a "
                                               f"larger folder with {RING_DIR_ENV}") from None
            self._mm = mmap.mmap(fd, self.layout.file_size)
        except BaseException:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise
        self._fd = fd
        try:
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except (ImportError, OSError):
            pass
        header = pack_header(self.layout, stream, self.generation, os.getpid(), alpha, time.time(),
                             placement=placement)
        self._mm[8:HEADER_SIZE] = header[8:]
        self._mm[0:8] = MAGIC  # last: a reader that sees the magic sees a complete header
        # Aligned 8-byte stores through numpy: the slot seq words and the latest_seq word.
        self._slot_seq = np.frombuffer(self._mm, dtype="<u8", count=slot_count * 8,
                                       offset=HEADER_SIZE)[::SLOT_ENTRY_SIZE // 8]
        self._latest = np.frombuffer(self._mm, dtype="<u8", count=2, offset=_OFF_LATEST_SEQ)
        self._pixels = [np.frombuffer(self._mm, dtype=np.uint8, count=self.layout.slot_size,
                                      offset=self.layout.slot_offset(i)).reshape(height, width, 4)
                        for i in range(slot_count)]
        self.closed = False

    def begin(self) -> tuple[int, int, np.ndarray]:
        """Start writing the next frame: returns (seq, slot, the slot's writable [H, W, 4] uint8 view).

        The slot is marked BUSY; write the pixels, then call `commit`.
        """
        seq = self.seq + 1
        slot = (seq - 1) % self.layout.slot_count
        self._slot_seq[slot] = BUSY
        return seq, slot, self._pixels[slot]

    def commit(self, seq: int, slot: int, t_pose: float = 0.0, t_render_start: float = 0.0,
               t_render_end: float = 0.0) -> None:
        """Publish the slot written since `begin` (seqlock step 4 and 5)."""
        base = HEADER_SIZE + slot * SLOT_ENTRY_SIZE
        _SLOT_TIMES.pack_into(self._mm, base + 8, t_pose, t_render_start, t_render_end)
        self._slot_seq[slot] = seq
        struct.pack_into("<I", self._mm, _OFF_LATEST_SLOT, slot)
        self._latest[0] = seq
        self.seq = seq

    def write(self, rgba: np.ndarray, **times) -> tuple[int, int]:
        """Copy one uint8 [H, W, 4] frame into the next slot; returns (seq, slot)."""
        seq, slot, view = self.begin()
        np.copyto(view, rgba, casting="no")
        self.commit(seq, slot, **times)
        return seq, slot

    def offset(self, slot: int) -> int:
        return self.layout.slot_offset(slot)

    def close(self) -> None:
        """Mark the ring closed, unmap and delete the file (only the daemon calls this)."""
        if self.closed:
            return
        self.closed = True
        struct.pack_into("<I", self._mm, _OFF_STATE, STATE_CLOSED)
        self._slot_seq = self._latest = self._pixels = None
        try:
            self._mm.close()
        except BufferError:  # a numpy view still alive somewhere: the mapping goes with the process
            pass
        try:
            # Only delete the file if it is still ours: a stream unloaded and loaded again under the same
            # name has a new ring at the same path by now.
            ours = os.path.samestat(os.fstat(self._fd), os.stat(self.path))
        except OSError:
            ours = False
        os.close(self._fd)
        if ours:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


class TornFrame(Exception):
    """The slot was overwritten while (or before) it was copied."""


class RingReader:
    """Maps a ring file read-only by path and copies frames out with the seqlock check."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                self.inode = os.fstat(f.fileno()).st_ino  # a new file at the same path is another ring
        except FileNotFoundError:
            raise RingError(f"{self.path}: ring file not found (daemon gone or stream unloaded)") from None
        except (OSError, ValueError) as e:
            raise RingError(f"{self.path}: cannot map ring file ({e})") from None
        self.header = parse_header(self._mm)
        h = self.header
        if h["file_size"] > len(self._mm):
            raise RingError(f"{self.path}: file is {len(self._mm)} bytes, header says {h['file_size']}")
        self.generation = h["generation"]
        self.width, self.height, self.slot_count = h["width"], h["height"], h["slot_count"]
        self._slot_seq = np.frombuffer(self._mm, dtype="<u8", count=self.slot_count * h["slot_entry_size"] // 8,
                                       offset=h["slot_table_offset"])[::h["slot_entry_size"] // 8]
        self._latest = np.frombuffer(self._mm, dtype="<u8", count=1, offset=_OFF_LATEST_SEQ)
        self._pixels = [np.frombuffer(self._mm, dtype=np.uint8, count=h["slot_size"],
                                      offset=h["first_slot_offset"] + i * h["slot_stride"])
                        for i in range(self.slot_count)]

    @property
    def closed_by_writer(self) -> bool:
        return struct.unpack_from("<I", self._mm, _OFF_STATE)[0] == STATE_CLOSED

    def latest(self) -> tuple[int, int]:
        """(latest_seq, latest_slot) as published by the writer (0, _) before the first frame."""
        seq = int(self._latest[0])
        slot = struct.unpack_from("<I", self._mm, _OFF_LATEST_SLOT)[0]
        return seq, slot

    def slot_seq(self, slot: int) -> int:
        return int(self._slot_seq[slot])

    def read(self, seq: int, slot: int, out: np.ndarray | None = None) -> np.ndarray:
        """Copy frame `seq` out of `slot` into a new (or the given) uint8 [H, W, 4] array.

        Raises TornFrame when the slot no longer (or not yet wholly) holds `seq`.
        """
        if not 0 <= slot < self.slot_count:
            raise TornFrame(f"slot {slot} out of range")
        s1 = int(self._slot_seq[slot])
        if s1 != seq:
            raise TornFrame(f"slot {slot} holds {'a frame being written' if s1 == BUSY else s1}, not {seq}")
        if out is None:
            out = np.empty((self.height, self.width, 4), dtype=np.uint8)
        np.copyto(out.reshape(-1), self._pixels[slot])
        if int(self._slot_seq[slot]) != s1:
            raise TornFrame(f"slot {slot} was overwritten during the copy of {seq}")
        return out

    def close(self) -> None:
        self._slot_seq = self._latest = self._pixels = None
        try:
            self._mm.close()
        except BufferError:
            pass

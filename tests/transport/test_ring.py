"""The shm ring: seqlock write/read, torn-frame detection against a real concurrent writer, stale reclaim."""
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tests.lines import Lines
from tha4bridge.transport.ring import (BUSY, FrameRing, RingError, RingReader, TornFrame, check_ring_dir, ring_dir,
                                        ring_path)
from tha4bridge.transport.stale import reclaim_stale


@pytest.fixture
def ring():
    r = FrameRing(f"t{os.getpid()}", 64, 32, alpha="premultiplied", slot_count=3)
    yield r
    r.close()


def test_write_then_read_roundtrip(ring):
    reader = RingReader(ring.path)
    assert reader.header["alpha_mode"] == 1 and reader.header["width"] == 64 and reader.header["height"] == 32
    assert reader.latest() == (0, 0)
    frames = [np.random.default_rng(i).integers(0, 256, (32, 64, 4), dtype=np.uint8) for i in range(5)]
    for i, f in enumerate(frames):
        seq, slot = ring.write(f, t_pose=1.0, t_render_start=2.0, t_render_end=3.0)
        assert (seq, slot) == (i + 1, i % 3)
        assert np.array_equal(reader.read(seq, slot), f)
        assert reader.latest() == (seq, slot)
    assert reader.header["first_slot_offset"] % 64 == 0
    reader.close()


def test_overwritten_and_busy_slots_are_detected(ring):
    reader = RingReader(ring.path)
    img = np.zeros((32, 64, 4), np.uint8)
    seq1, slot1 = ring.write(img)
    for _ in range(3):  # lap the 3-slot ring: slot1 now holds seq 4
        ring.write(img)
    with pytest.raises(TornFrame, match="holds 4"):
        reader.read(seq1, slot1)
    seq, slot, view = ring.begin()  # mid-write: BUSY
    assert reader.slot_seq(slot) == BUSY
    with pytest.raises(TornFrame, match="being written"):
        reader.read(seq - 3, slot)
    ring.commit(seq, slot)
    reader.read(seq, slot)
    reader.close()


def test_close_marks_state_and_deletes(ring):
    reader = RingReader(ring.path)
    ring.close()
    assert reader.closed_by_writer
    assert not ring.path.exists()
    with pytest.raises(RingError, match="not found"):
        RingReader(ring.path)
    reader.close()


WRITER = textwrap.dedent("""
    import sys, time, numpy as np
    from tha4bridge.transport.ring import FrameRing
    r = FrameRing(sys.argv[1], 512, 512, slot_count=3)
    print(r.path, flush=True)
    sys.stdin.readline()  # go
    end = time.monotonic() + 1.0
    while time.monotonic() < end:   # unthrottled: laps the ring far faster than a reader copies
        seq, slot, view = r.begin()
        view[...] = seq % 251
        r.commit(seq, slot)
    print(r.seq, flush=True)
    sys.stdin.readline()
    r.close()
""")


def test_concurrent_writer_never_yields_a_torn_frame():
    proc = subprocess.Popen([sys.executable, "-c", WRITER, f"torn{os.getpid()}"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    said = Lines(proc)
    try:
        path = said.next_line(60, "the writer's ring path").strip()
        reader = RingReader(path)
        proc.stdin.write("\n")
        proc.stdin.flush()
        good = torn = 0
        out = np.empty((512, 512, 4), np.uint8)
        end = time.monotonic() + 0.9
        while time.monotonic() < end:
            seq, slot = reader.latest()
            if seq == 0:
                continue
            try:
                frame = reader.read(seq, slot, out=out)
            except TornFrame:
                torn += 1
                continue
            # an accepted copy is exactly one frame: every byte is that frame's value
            assert frame.min() == frame.max() == seq % 251, f"corrupt frame {seq} accepted"
            good += 1
        written = int(said.next_line(30, "the writer's count of frames written"))
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(10)
        reader.close()
    finally:
        proc.kill()
    assert good > 0 and written > good
    print(f"written {written}, read clean {good}, torn detected {torn}")


def test_the_ring_folder_can_be_named_and_a_bad_one_is_one_sentence(own_ring_dir, tmp_path, monkeypatch):
    assert ring_dir() == own_ring_dir == check_ring_dir()
    ring = FrameRing("named", 8, 8)
    try:
        assert ring.path == own_ring_dir / f"tha4bridge-{os.getpid()}-named.ring" and ring.path.exists()
    finally:
        ring.close()
    monkeypatch.setenv("THA4BRIDGE_RING_DIR", str(tmp_path / "missing"))
    with pytest.raises(RingError, match=r"^THA4BRIDGE_RING_DIR=.*missing: no such folder \(ring files"):
        check_ring_dir()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("THA4BRIDGE_RING_DIR", str(tmp_path / "a-file"))
    with pytest.raises(RingError, match=r"a-file: is not a folder"):
        check_ring_dir()
    monkeypatch.delenv("THA4BRIDGE_RING_DIR")
    default = ring_dir()  # /dev/shm on Linux
    monkeypatch.setenv("THA4BRIDGE_RING_DIR", " ")  # set but blank: the platform's default too
    assert ring_dir() == default


def test_reclaim_removes_dead_and_unlocked_files_only(own_ring_dir):
    # a dead pid: a finished child process
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)
    dead = ring_path("reclaimtest", pid=dead_pid)
    dead.write_bytes(b"x" * 16)
    # a live process that holds its ring (and the lock): must survive
    live = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from tha4bridge.transport.ring import FrameRing
        r = FrameRing("reclaimlive", 8, 8)
        print(r.path, flush=True)
        sys.stdin.readline()
        r.close()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    said = Lines(live)
    try:
        live_path = said.next_line(60, "the live process's ring path").strip()
        # a live pid (pid 1) whose file nobody locks: a reused pid, the file is stale
        reused = ring_path("reclaimreused", pid=1)
        reused.write_bytes(b"x" * 16)
        removed = reclaim_stale()
        assert dead in removed and not dead.exists()
        if sys.platform != "win32":
            assert reused in removed and not reused.exists()
        assert os.path.exists(live_path), "a live daemon's ring file was reclaimed"
        live.stdin.write("\n")
        live.stdin.flush()
        live.wait(10)
        assert not os.path.exists(live_path)
    finally:
        live.kill()
        for p in (dead, ring_dir() / "tha4bridge-1-reclaimreused.ring"):
            p.unlink(missing_ok=True)


def test_invalid_ring_arguments():
    with pytest.raises(ValueError, match="stream name"):
        FrameRing("bad/name", 8, 8)
    with pytest.raises(ValueError, match="3 slots"):
        FrameRing("ok", 8, 8, slot_count=2)


def test_closing_an_old_ring_spares_its_successor_at_the_same_path():
    old = FrameRing(f"succ{os.getpid()}", 8, 8)
    new = FrameRing(f"succ{os.getpid()}", 8, 8)  # unload + load again, before the old one was closed
    assert new.generation != old.generation
    old.close()
    assert new.path.exists() and RingReader(new.path).generation == new.generation
    new.close()
    assert not new.path.exists()

"""The protocol vectors decode to their JSON, and our encoders produce them byte for byte."""
import json
import struct
from pathlib import Path

import msgpack
import pytest

from tha4bridge.transport.ring import (HEADER_SIZE, SLOT_ENTRY_SIZE, RingError, RingLayout, pack_header,
                                       parse_header)

VECTORS = Path(__file__).resolve().parents[2] / "protocols" / "vectors"
MSGPACK_FILES = sorted(VECTORS.glob("*.msgpack"))


def test_vector_set_is_complete():
    names = {p.stem for p in MSGPACK_FILES}
    assert {"frame_header_shm", "frame_header_inline", "control_hello_request", "control_hello_reply",
            "control_set_pose_request", "control_version_refusal"} <= names
    for p in MSGPACK_FILES:
        assert p.with_suffix(".json").exists(), f"{p.name} has no expected decoding"


@pytest.mark.parametrize("path", MSGPACK_FILES, ids=lambda p: p.stem)
def test_msgpack_vector_decodes_to_json(path):
    decoded = msgpack.unpackb(path.read_bytes(), raw=False)
    expected = json.loads(path.with_suffix(".json").read_text())
    assert decoded == expected
    # msgpack-python (what the daemon uses) re-encodes the expected value to exactly these bytes
    assert msgpack.packb(expected, use_bin_type=True) == path.read_bytes()


def test_ring_header_vector():
    raw = (VECTORS / "ring_header_v1.bin").read_bytes()
    expected = json.loads((VECTORS / "ring_header_v1.json").read_text())
    header = parse_header(raw)
    slots = expected.pop("slots")
    assert header == expected
    for i, slot in enumerate(slots):
        seq, t_pose, t_start, t_end = struct.unpack_from("<Qddd", raw, HEADER_SIZE + i * SLOT_ENTRY_SIZE)
        assert (seq, t_pose, t_start, t_end) == (slot["seq"], slot["t_pose"], slot["t_render_start"],
                                                 slot["t_render_end"])
    # the writer's header packer produces the vector's first 256 bytes exactly
    layout = RingLayout(expected["width"], expected["height"], expected["slot_count"])
    packed = pack_header(layout, expected["stream"], expected["generation"], expected["writer_pid"], "straight",
                         expected["created_at"], latest_seq=expected["latest_seq"],
                         latest_slot=expected["latest_slot"])
    assert packed == raw[:HEADER_SIZE]
    assert expected["first_slot_offset"] % 64 == 0 and expected["slot_stride"] % 64 == 0


def test_ring_header_refuses_other_major_and_bad_magic():
    raw = bytearray((VECTORS / "ring_header_v1.bin").read_bytes())
    raw[8:10] = struct.pack("<H", 2)
    with pytest.raises(RingError, match="protocol 2.x.*1.x"):
        parse_header(raw)
    raw[0:8] = b"NOTARING"
    with pytest.raises(RingError, match="magic"):
        parse_header(raw)
    with pytest.raises(RingError):
        parse_header(raw[:100])


def test_crop_ring_header_vector():
    """Since ring 1.1: a crop's ring says minor 1 and carries its placement at offset 192; a whole frame's
    ring is still the 1.0 header byte for byte (the vector above)."""
    raw = (VECTORS / "ring_header_v1_1_crop.bin").read_bytes()
    expected = json.loads((VECTORS / "ring_header_v1_1_crop.json").read_text())
    expected.pop("slots")
    assert parse_header(raw) == expected
    assert (expected["version_minor"], expected["region_x"], expected["region_y"]) == (1, 160, 48)
    layout = RingLayout(expected["width"], expected["height"], expected["slot_count"])
    packed = pack_header(layout, expected["stream"], expected["generation"], expected["writer_pid"], "straight",
                         expected["created_at"], latest_seq=expected["latest_seq"],
                         latest_slot=expected["latest_slot"], placement=(160, 48, 512, 512))
    assert packed == raw[:HEADER_SIZE]

"""Regenerate the protocol test vectors: `python protocols/vectors/make_vectors.py`.

Each `NAME.msgpack` decodes to the value in `NAME.json`; `ring_header_v1.bin` (global header + slot table of a
4-slot ring) decodes to `ring_header_v1.json`. The vectors are the contract: Python tests
(tests/transport/test_vectors.py) and the C# tests read them. Change them only additively (new files), never edit a published one.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import msgpack

from tha4bridge.pose import PARAMETER_NAMES
from tha4bridge.transport.ring import BUSY, HEADER_SIZE, SLOT_ENTRY_SIZE, RingLayout, pack_header

HERE = Path(__file__).resolve().parent

GENERATION = 0x0102030405060708
T0 = 1764044000.5  # a float64 with an exact binary value

# The pose a frame shows (since 1.1): 45 floats in parameter order; here a wink, an open mouth and a head turn.
POSE = [0.0] * len(PARAMETER_NAMES)
for name, value in {"eye_wink_left": 1.0, "mouth_aaa": 0.5, "head_x": -0.25, "breathing": 0.75}.items():
    POSE[PARAMETER_NAMES.index(name)] = value

FRAME_SHM = {"proto": 1, "proto_minor": 1, "stream": "demo", "seq": 7, "generation": GENERATION,
             "width": 512, "height": 512, "stride": 2048, "format": "rgba8", "alpha": "straight",
             "color_space": "srgb", "transport": "shm", "size": 1048576,
             "t_pose": T0, "t_render_start": T0 + 0.001953125, "t_render_end": T0 + 0.03125,
             "t_published": T0 + 0.03173828125, "pose_source": "tracker:vmc", "pose": POSE,
             "path": "/dev/shm/tha4bridge-4242-demo.ring", "slot": 2, "offset": 2101248}
FRAME_INLINE = {k: v for k, v in FRAME_SHM.items() if k not in ("path", "slot", "offset")}
# Since 1.2: a crop stream (serve --region 160,48,192,192): `region` and the full frame's size follow `pose`.
FRAME_CROP = {k: v for k, v in FRAME_SHM.items() if k not in ("path", "slot", "offset")}
FRAME_CROP.update(proto_minor=2, stream="head", width=192, height=192, stride=768, size=147456,
                  region=[160, 48, 192, 192], full_width=512, full_height=512,
                  path="/dev/shm/tha4bridge-4242-head.ring", slot=2, offset=299008)
FRAME_INLINE.update(transport="inline", alpha="premultiplied", generation=0, pose_source="control")

STREAM = {"name": "demo", "student": "demo", "kind": "DemoPoser", "device": "cpu", "width": 512, "height": 512,
          "alpha": "straight", "format": "rgba8", "transport": "shm", "path": "/dev/shm/tha4bridge-4242-demo.ring",
          "generation": GENERATION, "slots": 4}

MSGPACK = {
    "frame_header_shm": FRAME_SHM,
    "frame_header_inline": FRAME_INLINE,
    "frame_header_shm_crop": FRAME_CROP,
    "control_hello_request": {"cmd": "hello", "id": 1, "proto": 1, "client": "unity"},
    "control_hello_reply": {"ok": True, "proto": 1, "proto_minor": 1, "version": "0.1.0", "pid": 4242,
                            "control": "tcp://127.0.0.1:5590", "frames": "tcp://127.0.0.1:5591",
                            "transport": "shm", "streams": [STREAM], "parameter_names": list(PARAMETER_NAMES),
                            "trackers": {"vmc": 39539, "ifm": 49983}, "shm_dir": "/dev/shm", "id": 1},
    "control_set_pose_request": {"cmd": "set_pose", "id": 2, "stream": "demo",
                                 "pose": {"eye_wink_left": 1.0, "head_x": -0.25}, "hold": 5.0},
    "control_set_pose_reply": {"ok": True, "stream": ["demo"], "applied": 2, "hold": 5.0, "id": 2},
    "control_version_refusal": {"ok": False, "code": "version", "proto": 1, "proto_minor": 1,
                                "error": "this daemon speaks tha4bridge protocol 1.x; the client asked for 2",
                                "id": 3},
    "control_unknown_command_reply": {"ok": False, "code": "unknown_command", "error": "unknown command 'dance'",
                                      "id": 4},
}

RING = {"stream": "demo", "generation": GENERATION, "pid": 4242, "alpha": "straight", "created_at": T0,
        "width": 512, "height": 512, "slot_count": 4, "latest_seq": 7, "latest_slot": 2,
        # slots 0..2 hold frames 5, 6, 7; frame 8 is being written into slot 3 (BUSY)
        "slot_seq": [5, 6, 7, BUSY],
        "slot_times": [[T0 - 0.25, T0 - 0.2421875, T0 - 0.21875], [T0 - 0.125, T0 - 0.1171875, T0 - 0.09375],
                       [T0, T0 + 0.001953125, T0 + 0.03125], [0.0, 0.0, 0.0]]}


# Since ring 1.1: the ring of that crop stream, its placement at offset 192.
RING_CROP = dict(RING, stream="head", width=192, height=192, placement=(160, 48, 512, 512))


def ring_bytes(ring: dict = RING) -> bytes:
    layout = RingLayout(ring["width"], ring["height"], ring["slot_count"])
    head = pack_header(layout, ring["stream"], ring["generation"], ring["pid"], ring["alpha"], ring["created_at"],
                       latest_seq=ring["latest_seq"], latest_slot=ring["latest_slot"],
                       placement=ring.get("placement"))
    table = b"".join(struct.pack("<Qddd", seq, *times) + bytes(SLOT_ENTRY_SIZE - 32)
                     for seq, times in zip(ring["slot_seq"], ring["slot_times"]))
    assert len(head) == HEADER_SIZE
    return head + table


def ring_expected(ring: dict = RING) -> dict:
    """What a reader decodes from ring_header_v1.bin (field names as in protocols/frames.md)."""
    layout = RingLayout(ring["width"], ring["height"], ring["slot_count"])
    d = {"magic": "THA4RING", "version_major": 1, "version_minor": 0 if "placement" not in ring else 1,
            "header_size": 256, "generation": ring["generation"], "writer_pid": ring["pid"], "state": 1,
            "width": ring["width"], "height": ring["height"], "row_stride": layout.row_stride, "pixel_format": 1, "alpha_mode": 0, "color_space": 1, "slot_count": 4,
            "slot_table_offset": 256, "slot_entry_size": 64, "slot_stride": layout.slot_stride,
            "slot_size": layout.slot_size, "first_slot_offset": layout.first_slot_offset,
            "file_size": layout.file_size, "created_at": ring["created_at"], "latest_seq": ring["latest_seq"],
            "latest_slot": ring["latest_slot"], "stream": ring["stream"]}
    if "placement" in ring:
        d.update(zip(("region_x", "region_y", "full_width", "full_height"), ring["placement"]))
    d["slots"] = [{"seq": s, "t_pose": t[0], "t_render_start": t[1], "t_render_end": t[2]}
                  for s, t in zip(ring["slot_seq"], ring["slot_times"])]
    return d


def main() -> None:
    for name, value in MSGPACK.items():
        (HERE / f"{name}.msgpack").write_bytes(msgpack.packb(value, use_bin_type=True))
        (HERE / f"{name}.json").write_text(json.dumps(value, indent=1) + "\n")
    (HERE / "ring_header_v1.bin").write_bytes(ring_bytes())
    (HERE / "ring_header_v1.json").write_text(json.dumps(ring_expected(), indent=1) + "\n")
    (HERE / "ring_header_v1_1_crop.bin").write_bytes(ring_bytes(RING_CROP))
    (HERE / "ring_header_v1_1_crop.json").write_text(json.dumps(ring_expected(RING_CROP), indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Issue 15 items 4 and 11: one pose-file reader for every tool, the shipped example, and `tha4bridge params`."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distiller.poses import load_pose_file
from tha4bridge.cli.offline_tools import read_poses
from tha4bridge.pose import INDEX, NUM_PARAMETERS, PARAMETER_NAMES
from tha4bridge.posefile import PoseFileError, read_pose_file

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "poses.json"


def _recording(path: Path, poses: np.ndarray) -> None:
    """What `tha4bridge record` writes: PNG names plus every frame's header, whose `pose` is a 45-list."""
    frames = [{"file": f"frame_{i:06d}.png", "seq": i + 1, "stream": "demo", "pose": [float(v) for v in p]}
              for i, p in enumerate(poses)]
    path.write_text(json.dumps({"frames": frames, "torn": 0, "dropped": 0}))


def test_every_pose_file_we_write_is_read_by_every_reader(tmp_path):
    poses = np.zeros((3, NUM_PARAMETERS), np.float32)
    poses[:, INDEX["mouth_aaa"]] = [0.0, 0.5, 1.0]
    poses[2, INDEX["head_x"]] = -0.5
    files = {"headers.json": lambda p: _recording(p, poses),
             "list.json": lambda p: p.write_text(json.dumps(poses.tolist())),
             "dicts.json": lambda p: p.write_text(json.dumps(
                 [{n: float(v) for n, v in zip(PARAMETER_NAMES, row) if v} for row in poses])),
             "poses.npy": lambda p: np.save(p, poses),
             "pose_dataset.pt": lambda p: torch.save(torch.from_numpy(poses), p),
             "tuple.pt": lambda p: torch.save((torch.from_numpy(poses),), p)}
    for name, write in files.items():
        write(tmp_path / name)
        for reader in (read_pose_file, read_poses, lambda p: load_pose_file(p).numpy()):
            assert np.array_equal(reader(tmp_path / name), poses), name


def test_the_shipped_example_is_read_by_render_and_the_distiller():
    a = read_pose_file(EXAMPLE)
    assert a.shape[0] >= 5 and a.shape[1] == NUM_PARAMETERS
    assert np.array_equal(load_pose_file(EXAMPLE).numpy(), a)  # every value already in range


@pytest.mark.parametrize("content, problem", [
    ('[{"mouth_aa": 1}]', "pose 0: unknown pose parameter 'mouth_aa'"),
    ('{"frames": [{"seq": 1}]}', "'frames' must be a list of frame headers, each with a 'pose'"),
    ("[[1, 2, 3]]", "pose 0 must be {parameter name: value} or a list of 45 numbers"),
    ("not json", "not valid JSON"),
    ('"a string"', "expected a list of poses"),
])
def test_bad_pose_files_get_one_line_naming_file_and_problem(tmp_path, content, problem):
    p = tmp_path / "poses.json"
    p.write_text(content)
    with pytest.raises(PoseFileError) as e:
        read_pose_file(p)
    assert str(e.value).startswith(f"{p}: ") and problem in str(e.value) and "\n" not in str(e.value)


def test_other_bad_files(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 7)))
    with pytest.raises(PoseFileError, match=r"expected poses of shape \[N, 45\], got \(2, 7\)"):
        read_pose_file(tmp_path / "bad.npy")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(PoseFileError, match="unknown pose file type"):
        read_pose_file(tmp_path / "x.txt")
    with pytest.raises(PoseFileError, match="file not found"):
        read_pose_file(tmp_path / "none.json")
    (tmp_path / "empty.json").write_text("[]")
    assert read_pose_file(tmp_path / "empty.json").shape == (0, NUM_PARAMETERS)
    with pytest.raises(PoseFileError, match="holds no poses"):
        load_pose_file(tmp_path / "empty.json")


def test_render_takes_a_recording_and_params_lists_45_names(tmp_path):
    poses = np.zeros((2, NUM_PARAMETERS), np.float32)
    poses[1, INDEX["mouth_aaa"]] = 1.0
    _recording(tmp_path / "headers.json", poses)
    from typer.testing import CliRunner

    from tha4bridge.cli import app

    r = CliRunner().invoke(app, ["render", "--poses", str(tmp_path / "headers.json"), "--out", str(tmp_path / "out"),
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0000.png", "0001.png"]
    r = CliRunner().invoke(app, ["params", "--json"])
    rows = json.loads(r.output)
    assert [row["name"] for row in rows] == list(PARAMETER_NAMES)
    head_x = rows[INDEX["head_x"]]
    assert (head_x["lower"], head_x["upper"], head_x["group"]) == (-1.0, 1.0, "head")
    r = CliRunner().invoke(app, ["params"])
    assert r.exit_code == 0 and "mouth_aaa" in r.output and "examples/poses.json" in r.output

"""`tha4bridge render`, `bench` and `inspect` on the demo and on the fixture students."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.shared import STUDENTS, needs_fixtures
from tests.student.util import random_poses
from tha4bridge.cli.offline_tools import read_poses
from tha4bridge.demo import DemoPoser
from tha4bridge.pose import NUM_PARAMETERS


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tha4bridge.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_cli_render_and_bench_on_the_demo(tmp_path):
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps([{"eye_wink_left": 1.0, "mouth_aaa": 1.0}]))
    r = run_cli("render", "--poses", poses, "--out", tmp_path / "png")
    assert r.returncode == 0, r.stderr
    img = Image.open(tmp_path / "png" / "0000.png")
    assert img.size == (512, 512) and img.mode == "RGBA"
    r = run_cli("bench", "--frames", "2", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["ms_per_frame_median"] > 0 and res["device"] == "cpu" and "mode" in res
    assert res["steady_state"].startswith("steady state: timed after") and res["calibration_s"] is None


@needs_fixtures
@pytest.mark.parametrize("name", ["lambda_00", "lambda_01"])
def test_cli_render_npy_and_bench_on_fixture_students(tmp_path, name):
    folder = STUDENTS / name
    poses = tmp_path / "p.npy"
    np.save(poses, random_poses(2, seed=4))
    r = run_cli("render", "-s", folder, "-p", poses, "-o", tmp_path / "out.npy", "--mode", "fast")
    assert r.returncode == 0, r.stderr
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (2, 4, 512, 512) and out.dtype == np.float32
    r = run_cli("bench", "-s", folder, "--frames", "2", "--json", "--mode", "exact")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["mode"] == "exact"


def test_cli_render_a_region(tmp_path):
    """`render --region`: the crop's frames, equal to the whole frame's pixels there; a bad crop in one line."""
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps([{"eye_wink_left": 1.0, "mouth_aaa": 1.0}]))
    r = run_cli("render", "-p", poses, "-o", tmp_path / "crop.npy", "--region", "100,50,64,32")
    assert r.returncode == 0, r.stderr
    pose = read_poses(str(poses))
    whole, crop = DemoPoser().render(pose).numpy(), np.load(tmp_path / "crop.npy")
    assert crop.shape == (1, 4, 32, 64) and np.array_equal(crop, whole[:, :, 50:82, 100:164])
    for bad, words in [("1,2,3", "four whole numbers"), ("500,0,100,100", "does not fit inside the 512x512")]:
        r = run_cli("render", "-p", poses, "-o", tmp_path / "bad.npy", "--region", bad)
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_refuses_a_bad_folder_in_one_line(tmp_path):
    (tmp_path / "character_model.yaml").write_text("character_image_file_name: character.png\n")
    r = run_cli("render", "-s", tmp_path, "-p", tmp_path / "none.npy", "-o", tmp_path / "o")
    assert r.returncode == 2 and "none.npy" in r.stderr  # the poses file is read first
    np.save(tmp_path / "p.npy", np.zeros((1, NUM_PARAMETERS), np.float32))
    r = run_cli("render", "-s", tmp_path, "-p", tmp_path / "p.npy", "-o", tmp_path / "o")
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {tmp_path / 'character_model.yaml'}: missing key face_morpher_file_name"
    r = run_cli("inspect", tmp_path)
    assert r.returncode == 1 and "problem:" in r.stdout

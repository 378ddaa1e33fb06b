"""load_poser: the word `demo` gives the procedural character, a folder a StudentPoser, a bad folder one line."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.shared import LAMBDA_01, needs_fixtures
from tha4bridge.demo import DemoPoser
from tha4bridge.load import load_poser
from tha4bridge.pose import LOWER, NEUTRAL, PARAMETER_NAMES
from tha4bridge.student import ModelFileError, StudentPoser


def test_demo_responds_to_every_parameter():
    demo = load_poser("demo", device="cpu")
    assert isinstance(demo, DemoPoser) and demo.name == "demo"
    poses = [NEUTRAL]
    for i, name in enumerate(PARAMETER_NAMES):
        p = NEUTRAL.copy()
        p[i] = LOWER[i] if name in ("iris_rotation_x", "head_x", "neck_z", "body_z") else 1.0
        poses.append(p)
    out = torch.cat([demo.render(np.stack(poses[k:k + 12])) for k in range(0, len(poses), 12)])
    changed = {name: float((out[i + 1] - out[0]).abs().amax()) for i, name in enumerate(PARAMETER_NAMES)}
    still = [n for n, d in changed.items() if d < 0.2]
    assert not still, f"the demo ignores {still}"


@needs_fixtures
def test_a_folder_gives_a_student_poser():
    poser = load_poser(LAMBDA_01, device="cpu", mode="fast", name="lambda")
    assert isinstance(poser, StudentPoser)
    d = poser.describe()
    assert (d["name"], d["mode"], d["kind"], d["folder"]) == ("lambda", "fast", "StudentPoser", str(LAMBDA_01))
    assert d["architecture"]["body_widths"] == [360, 180, 90]


def test_a_bad_folder_raises_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="character_model.yaml: missing"):
        load_poser(tmp_path, device="cpu")

"""The student on a CUDA device: the same levers as on the CPU (float16 wide layers in fast mode on tensor
cores, the visibility mask, crops), checked against the CPU's exact render. Skipped where torch sees no CUDA
device (every CI machine of this project: the tests run wherever a developer has one)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.shared import LAMBDA_00, needs_fixtures
from tests.student.util import official_poses, random_poses
from tha4bridge.imaging import psnr
from tha4bridge.region import Region
from tha4bridge.student import StudentPoser
from tha4bridge.student.arithmetic import choose

pytestmark = [needs_fixtures,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch here")]


@pytest.fixture(scope="module")
def cpu_exact():
    return StudentPoser(LAMBDA_00, device="cpu", mode="exact")


@pytest.fixture(scope="module")
def poses():
    return np.concatenate([random_poses(2, seed=41), official_poses()[39:41]])


def _on_cpu(frames: torch.Tensor) -> torch.Tensor:
    return frames.detach().float().cpu()


def test_exact_on_cuda_equals_exact_on_the_cpu(cpu_exact, poses):
    gpu = StudentPoser(LAMBDA_00, device="cuda", mode="exact")
    for p in poses:
        assert psnr(_on_cpu(gpu.render(p))[0], cpu_exact.render(p)[0]) >= 60.0


def test_fast_on_cuda_uses_the_arithmetic_the_device_has(cpu_exact, poses):
    arithmetic = choose("cuda")
    major, _ = torch.cuda.get_device_capability()
    assert arithmetic.dtype == (torch.float16 if major >= 7 else torch.float32), arithmetic.reason
    fast = StudentPoser(LAMBDA_00, device="cuda", mode="fast")
    assert fast.renderer.mask is not None
    fast.renderer.calibrate_mask()
    fast.render(poses[0])  # the first frame after calibration is a whole one; the next are masked
    worst = min(psnr(_on_cpu(fast.render(p))[0], cpu_exact.render(p)[0]) for p in poses)
    assert worst >= 40.0, f"fast on CUDA vs exact: {worst:.1f} dB"


def test_crop_on_cuda_equals_the_whole_frame(poses):
    gpu = StudentPoser(LAMBDA_00, device="cuda", mode="exact")
    region = Region(160, 48, 192, 192)
    whole = _on_cpu(gpu.render(poses[0]))
    assert psnr(_on_cpu(gpu.render(poses[0], region))[0], region.cut(whole)[0]) >= 60.0

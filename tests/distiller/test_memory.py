"""The distiller's large CPU tensors sit on transparent huge pages (see distiller/__init__.py for why)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")

PROBE = """
import distiller, torch
block = torch.ones(64 << 20)  # 256 MB, written
for line in open('/proc/self/smaps_rollup'):
    if line.startswith('AnonHugePages:'):
        print(int(line.split()[1]) // 1024)
"""


@pytest.mark.skipif(not THP.is_file() or "[never]" in THP.read_text(),
                    reason="this kernel has transparent huge pages switched off")
def test_a_large_tensor_lands_on_huge_pages_in_a_distiller_process():
    def huge_mb(env_value: str | None) -> int:
        env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
        if env_value is not None:
            env["THP_MEM_ALLOC_ENABLE"] = env_value
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    assert huge_mb(None) >= 200  # the distiller's default: most of the 256 MB block on 2 MB pages
    assert huge_mb("0") < 64  # a user's explicit choice wins (setdefault)

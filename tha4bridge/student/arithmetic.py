"""Which arithmetic `fast` mode uses on this device, and why (one line for the banner, `bench` and `inspect`).

Reduced precision pays only where the hardware multiplies it natively. A CPU without AVX512-BF16 or AMX
runs a bfloat16 GEMM through a slow reference loop (measured 5-12x slower than float32 on AVX2 Zen 3), so
there `fast` keeps float32, and `fast` is never slower than `exact`.

What counts as native:
- CPU: cpuinfo reports `avx512_bf16` or `amx_bf16` (`torch.cpu.get_capabilities()`), and neither ATen nor
  oneDNN has been capped below it by the environment: `ATEN_CPU_CAPABILITY` (read back through
  `torch.backends.cpu.get_cpu_capability()`, which must say AVX512) and `ONEDNN_MAX_CPU_ISA` (must name an
  ISA with bfloat16 dot products). The caps matter because cpuinfo reports the silicon, not what the
  libraries were told to use: this is how a bfloat16 machine emulates one without.
- CUDA: float16 on compute capability >= 7.0 (tensor cores; 10 mantissa bits keep more of the ω₀ = 30
  amplified rounding than bfloat16's 7), float32 below.
- MPS: float32 (half precision on Apple GPUs has not been checked against the 40 dB bar here).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

# oneDNN ISA names (ONEDNN_MAX_CPU_ISA) whose kernels include bfloat16 dot products.
_ONEDNN_BF16_ISAS = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                     "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
                     "AVX10_2_512_AMX_2", "ALL", "DEFAULT"}


@dataclass(frozen=True)
class Arithmetic:
    """`dtype` of the wide GEMMs in `fast` mode (float32: the exact arrangement) and the reason, in words."""

    dtype: torch.dtype
    reason: str

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def line(self, mode: str) -> str:
        if mode == "exact":
            return "float32 (exact mode)"
        return f"{self.name} ({self.reason})"


def cpu_bf16_native() -> tuple[bool, str]:
    """(whether bfloat16 GEMMs run natively on this CPU, the reason in words)."""
    caps = torch.cpu.get_capabilities()
    hw = [k for k in ("amx_bf16", "avx512_bf16") if caps.get(k)]
    cpu = caps.get("cpu_name") or caps.get("architecture", "CPU")
    if not hw:
        return False, f"{cpu} has no AVX512-BF16 or AMX: bfloat16 GEMMs would be emulated, slower than float32"
    aten = torch.backends.cpu.get_cpu_capability()
    if not aten.startswith("AVX512"):
        return False, f"{cpu} has {hw[0]} but ATen is capped to {aten} (ATEN_CPU_CAPABILITY)"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if isa and isa not in _ONEDNN_BF16_ISAS:
        return False, f"{cpu} has {hw[0]} but oneDNN is capped to {isa} (ONEDNN_MAX_CPU_ISA)"
    return True, f"{cpu} multiplies bfloat16 natively ({hw[0]})"


def choose(device: torch.device | str) -> Arithmetic:
    """The arithmetic of `fast` mode's wide GEMMs on `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major >= 7:
            return Arithmetic(torch.float16, f"CUDA compute capability {major}.{minor} has float16 tensor cores")
        return Arithmetic(torch.float32, f"CUDA compute capability {major}.{minor} has no tensor cores")
    if device.type == "mps":
        return Arithmetic(torch.float32, "half precision on MPS is not verified against the 40 dB bar")
    if device.type == "cpu":
        native, why = cpu_bf16_native()
        return Arithmetic(torch.bfloat16 if native else torch.float32, why)
    return Arithmetic(torch.float32, f"no reduced-precision rule for {device.type}")

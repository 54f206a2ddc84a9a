"""What this machine can train on: each GPU with its free memory and bf16 support (torch.cuda, or nvidia-smi
where torch sees no GPU), else the CPU's cores and memory, with a rough compute rate for duration estimates.

Reads only; never allocates device memory beyond what `torch.cuda.mem_get_info` needs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field

# Dense bf16 tensor-core peaks (FLOP/s) by card name; anything unlisted falls back on its compute capability.
GPU_PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
                  "L4": 121e12, "RTX 4090": 165e12, "RTX 3090": 71e12, "V100": 125e12, "T4": 65e12}
GPU_FLOPS_BY_MAJOR = {9: 900e12, 8: 150e12, 7: 60e12}


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    bf16: bool
    peak_flops: float


@dataclass(frozen=True)
class Hardware:
    """The devices one training job may use; `gpus` is empty on a CPU-only machine."""

    cpu_cores: int
    ram_total_bytes: int
    ram_available_bytes: int
    gpus: tuple[Gpu, ...] = field(default_factory=tuple)
    cpu_flops: float = 0.0           # measured fp32 matmul rate of this process on this CPU
    source: str = "cpu"              # "torch.cuda", "nvidia-smi" or "cpu"

    @property
    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"

    @property
    def best_gpu(self) -> Gpu | None:
        return max(self.gpus, key=lambda g: g.free_bytes, default=None)

    @property
    def budget_bytes(self) -> int:
        """Memory one job may plan to fill: the freest GPU's free memory, or the RAM still available."""
        gpu = self.best_gpu
        return gpu.free_bytes if gpu else self.ram_available_bytes

    @property
    def peak_flops(self) -> float:
        gpu = self.best_gpu
        return gpu.peak_flops if gpu else self.cpu_flops

    def describe(self) -> str:
        if self.gpus:
            cards = "; ".join(f"GPU {g.index} {g.name}: {g.free_bytes / 2**30:.1f} of {g.total_bytes / 2**30:.1f} "
                              f"GiB free{', bf16' if g.bf16 else ''}" for g in self.gpus)
            return f"{len(self.gpus)} GPU(s) ({cards})"
        return (f"no GPU; CPU with {self.cpu_cores} cores, {self.ram_available_bytes / 2**30:.1f} of "
                f"{self.ram_total_bytes / 2**30:.1f} GiB RAM available, about {self.cpu_flops / 1e9:.0f} GFLOP/s")


def detect_hardware(measure_cpu: bool = True) -> Hardware:
    """GPUs from torch.cuda, else from nvidia-smi (a driver torch cannot use still tells the user what is there),
    else the CPU. `measure_cpu` times a short matmul (about 0.1 s) for the CPU's compute rate."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    total, available = _ram()
    gpus, source = _torch_gpus(), "torch.cuda"
    if not gpus:
        gpus, source = _nvidia_smi_gpus(), "nvidia-smi"
    if not gpus:
        source = "cpu"
    flops = measure_cpu_flops() if measure_cpu and not gpus else 0.0
    return Hardware(cpu_cores=cores, ram_total_bytes=total, ram_available_bytes=available, gpus=tuple(gpus),
                    cpu_flops=flops, source=source)


def _ram() -> tuple[int, int]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.total), int(vm.available)
    except ImportError:  # psutil comes with accelerate; without it, the kernel's own figures
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")


def _peak_for(name: str, major: int) -> float:
    for key, flops in GPU_PEAK_FLOPS.items():
        if key.lower() in name.lower():
            return flops
    return GPU_FLOPS_BY_MAJOR.get(major, 30e12)


def _torch_gpus() -> list[Gpu]:
    import torch

    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        props = torch.cuda.get_device_properties(i)
        out.append(Gpu(index=i, name=props.name, total_bytes=int(total), free_bytes=int(free),
                       bf16=props.major >= 8, peak_flops=_peak_for(props.name, props.major)))
    return out


def _nvidia_smi_gpus() -> list[Gpu]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        proc = subprocess.run([exe, "--query-gpu=index,name,memory.total,memory.free,compute_cap",
                               "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_nvidia_smi(proc.stdout) if proc.returncode == 0 else []


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Rows of `index, name, memory.total [MiB], memory.free [MiB], compute_cap`."""
    out = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5:
            continue
        try:
            major = int(float(parts[4]))
            out.append(Gpu(index=int(parts[0]), name=parts[1], total_bytes=int(float(parts[2])) * 2**20,
                           free_bytes=int(float(parts[3])) * 2**20, bf16=major >= 8,
                           peak_flops=_peak_for(parts[1], major)))
        except ValueError:
            continue
    return out


def measure_cpu_flops(size: int = 512, seconds: float = 0.1) -> float:
    """fp32 matmul FLOP/s of this process's torch threads, timed over about `seconds`."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # first call pays for thread-pool start-up
    runs, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        a @ b
        runs += 1
    return 2 * size**3 * runs / elapsed

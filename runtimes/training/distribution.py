"""How one training job spreads over this machine: how many processes (ranks) it runs, the memory each may fill,
and which strategies this machine can run (DDP: a whole copy per rank; FSDP: weights, gradients and optimizer states
sharded, over GPUs or CPU processes; ZeRO-3 on GPUs with DeepSpeed installed); the topology a user asks for is
checked here with clear refusals.

Pure: it reads the hardware description it is given; it never starts a process or touches a device.
"""
from __future__ import annotations

import importlib.util
from typing import Literal

from core.errors import UserError
from runtimes.training.hardware import Hardware

Strategy = Literal["single", "ddp", "fsdp", "zero3"]
STRATEGIES: tuple[str, ...] = ("single", "ddp", "fsdp", "zero3")
SHARDED = ("fsdp", "zero3")


def default_processes(hardware: Hardware) -> tuple[int, str]:
    """One rank per GPU; one process on a CPU-only machine (it already uses every core)."""
    if hardware.gpus:
        n = len(hardware.gpus)
        return n, (f"one process per GPU ({n})" if n > 1 else "one GPU: one process")
    return 1, ("no GPU: one process already uses every core; ask for N CPU processes with the gloo backend with "
               "`processes` (for tests of distributed training)")


def check_processes(hardware: Hardware, processes: int, recipe: str) -> None:
    """More ranks than this machine has devices (or cores) is refused. Every recipe runs on several ranks (GRPO's
    groups must then fit the ranks' batch: `generation_groups`)."""
    if processes < 1:
        raise UserError(f"setting `processes` = {processes}: it takes 1 or more")
    if processes == 1:
        return
    if hardware.gpus and processes > len(hardware.gpus):
        raise UserError(f"setting `processes` = {processes} is more than the {len(hardware.gpus)} GPU(s) of this "
                        f"machine: one rank per GPU, so at most {len(hardware.gpus)}")
    if not hardware.gpus and processes > hardware.cpu_cores:
        raise UserError(f"setting `processes` = {processes} is more than the {hardware.cpu_cores} CPU cores of this "
                        f"machine: CPU ranks sharing a core only wait for each other; use at most {hardware.cpu_cores}")


def rank_budget(hardware: Hardware, processes: int) -> int:
    """Memory one rank may fill: the freest `processes` GPUs' least free memory, or the RAM shared by the ranks."""
    if hardware.gpus:
        freest = sorted((g.free_bytes for g in hardware.gpus), reverse=True)[:processes]
        return min(freest)
    return hardware.ram_available_bytes // processes


def check_strategy(strategy: str, processes: int, device: str) -> None:
    """A strategy the user named must be one this run can use, said plainly when it cannot."""
    if strategy == "single" and processes > 1:
        raise UserError(f"strategy `single` runs one process, and `processes` is {processes}: use ddp or fsdp, or "
                        "processes = 1")
    if strategy != "single" and processes == 1:
        raise UserError(f"strategy `{strategy}` distributes over several processes and `processes` is 1: set "
                        "`processes` to 2 or more (on a CPU-only machine, N CPU processes with gloo)")
    if strategy == "zero3" and importlib.util.find_spec("deepspeed") is None:
        raise UserError("strategy `zero3` needs DeepSpeed, which is not installed (`pip install deepspeed`); "
                        "`fsdp` shards weights, gradients and optimizer states the same way with PyTorch alone")
    if strategy == "zero3" and device == "cpu":
        # accelerate turns DeepSpeed on only for GPU ranks; FSDP2 shards CPU ranks too (`enable_cpu_fsdp`).
        raise UserError("strategy `zero3` shards over GPUs: DeepSpeed does not train on CPU processes; `fsdp` "
                        "shards the same states over CPU processes (gloo)")


def topology_settings(nodes: int | None, gpus_per_node: int | None, processes: int | None,
                      hardware: Hardware | None = None) -> dict[str, int]:
    """The `processes` (ranks per machine) and `nodes` settings for `--nodes`, `--gpus-per-node` and `--processes`;
    several machines run on a Ray cluster, planned with this machine standing for each of them."""
    if nodes is not None and nodes != 1:
        from runtimes.training.jobs.ray_launch import require_ray

        require_ray(f"--nodes {nodes}: training across several machines runs on a Ray cluster")
        if gpus_per_node is None and processes is None:
            raise UserError(f"--nodes {nodes}: say how many ranks each machine runs with --gpus-per-node N (or "
                            "--processes N for CPU processes)")
    if gpus_per_node is not None:
        if hardware is None or not hardware.gpus:
            raise UserError(f"--gpus-per-node {gpus_per_node}: this machine has no GPU; ask for CPU processes with "
                            "--processes N")
        if processes is not None and processes != gpus_per_node:
            raise UserError(f"--processes {processes} and --gpus-per-node {gpus_per_node} disagree: on one machine "
                            "they are the same number; give one of them")
        processes = gpus_per_node
    return {**({} if processes is None else {"processes": processes}),
            **({"nodes": nodes} if nodes is not None and nodes != 1 else {})}

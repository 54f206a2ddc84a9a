"""FSDP: the plan shards over CPU processes when a whole copy does not fit in one rank's share of the RAM and says
why, with a per-rank estimate of the shards; a checkpoint resumes on another world size with the global batch it
was written with, or is refused saying why. An FSDP job on 2 gloo ranks, cancelled, crashed and resumed, is the
slow test of test_training_distributed.py (one torchrun start serves both); bench/fsdp_world_size.py resumes
real shards on 1 rank."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from core.errors import UserError
from runtimes.training.auto_config import DataProfile, auto_configure
from runtimes.training.hardware import Hardware
from runtimes.training.memory_estimate import TrainingShape, estimate_memory
from runtimes.training.plan_explanation import explain

GIB = 2**30


def cpu(ram_bytes: int) -> Hardware:
    return Hardware(cpu_cores=2, ram_total_bytes=32 * GIB, ram_available_bytes=ram_bytes, cpu_flops=50e9)


def test_fsdp_when_only_shards_fit_in_each_cpu_ranks_share_of_the_ram(shape):
    rnd = random.Random(0)
    data = DataProfile.from_lengths([rnd.randint(40, 400) for _ in range(1000)])
    run = TrainingShape(method="full", micro_batch=1, seq_len=448, gradient_checkpointing=True, ranks=2)
    whole, shards = estimate_memory(shape, run), estimate_memory(shape, replace(run, sharded=True))
    assert shards.optimizer == whole.optimizer // 2 and shards.gradients == whole.gradients // 4
    ram = int((whole.total + shards.total) / 0.9)  # each of 2 ranks gets half: room for shards, not a whole copy
    plan = auto_configure(shape, data, cpu(ram), "sft", {"method": "full", "processes": 2})
    assert (plan.config.strategy, plan.config.processes) == ("fsdp", 2)
    reason = plan.decision("strategy").reason
    assert "a whole copy does not fit on one rank" in reason and "2 CPU processes (gloo)" in reason
    assert "FSDP2 through accelerate" in reason
    assert plan.fits and plan.estimate.total <= ram // 2
    assert "FSDP shards weights, gradients and optimizer states over 2 ranks" in explain(plan)


def test_a_checkpoint_resumes_on_another_world_size_with_its_global_batch_or_is_refused_saying_why(tmp_path):
    from runtimes.training.jobs.sharded_checkpoint import TOPOLOGY_FILE, Topology, resume_accumulation

    sharded, whole = tmp_path / "fsdp" / "checkpoint-3", tmp_path / "ddp" / "checkpoint-3"
    (sharded / "pytorch_model_fsdp_0").mkdir(parents=True)
    whole.mkdir(parents=True)
    for folder, strategy in ((sharded, "fsdp"), (whole, "ddp")):
        topology = Topology(strategy=strategy, world_size=2, micro_batch=2, gradient_accumulation=1)
        (folder / TOPOLOGY_FILE).write_text(topology.model_dump_json(), encoding="utf-8")
    assert resume_accumulation(sharded, "fsdp", 2, 2, 1) == 1
    assert resume_accumulation(sharded, "fsdp", 1, 2, 1) == 2  # DCP reshards; twice the accumulation keeps 4
    assert resume_accumulation(whole, "ddp", 4, 1, 3) == 1  # a whole copy loads anywhere
    cases = [(sharded, "ddp", 2, "written sharded by FSDP .* resume it with strategy `fsdp`"),
             (whole, "fsdp", 2, "written whole by ddp, and this run uses strategy `fsdp`: resume it with strategy "
                                "`ddp`"),
             (sharded, "fsdp", 3, "global batch of 4; 3 ranks of micro-batch 2 cannot make that batch "
                                  r"\(4 is not a multiple of 6\)")]
    for folder, strategy, ranks, message in cases:
        with pytest.raises(UserError, match=message):
            resume_accumulation(folder, strategy, ranks, 2, 1)

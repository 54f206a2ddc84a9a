"""FSDP: the plan shards over CPU processes when a whole copy does not fit in one rank's share of the RAM and says
why, with a per-rank estimate of the shards. A job with 2 gloo ranks trains with
FSDP2, is stopped with a sharded (DCP) checkpoint, resumes on the loss curve of an uninterrupted run, registers the
whole gathered model, records its topology in MLflow, and its checkpoint resumes on 1 rank with the same global
batch or is refused where it cannot."""
from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from tests.rank_processes import alive, rank_pids

from core.errors import UserError
from runtimes.training.auto_config import DataProfile, auto_configure
from runtimes.training.hardware import Hardware
from runtimes.training.memory_estimate import TrainingShape, estimate_memory
from runtimes.training.plan_explanation import explain

GIB = 2**30
LOSS_TOLERANCE = 1e-4  # the same examples per step; only the order of float additions differs


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


@pytest.fixture(scope="module")
def ws(demos_workspace):
    return demos_workspace(rows=40)


def _spec(**settings):
    return {"model": "tiny", "table": "demos", "technique": "sft", "eval_fraction": 0.1,
            "settings": {"micro_batch": 2, "max_length": 32, "learning_rate": 1e-3, "method": "full",
                         "max_steps": 30, **settings}}


@pytest.mark.slow
def test_an_fsdp_job_on_two_gloo_ranks_stops_with_sharded_checkpoints_and_resumes_on_the_same_curve(ws):
    from runtimes.jobs import lifecycle
    from runtimes.jobs.store import JobStore
    from runtimes.models.tracking import JobRun
    from runtimes.training.jobs.sharded_checkpoint import resume_accumulation
    from tests.waiting import JOB_STALL_S, until

    store = JobStore(ws)
    one = lifecycle.submit(ws, "finetune", _spec(gradient_accumulation=2, processes=1))
    assert lifecycle.wait(ws, one.id, timeout_s=JOB_STALL_S).status == "succeeded"
    job = lifecycle.submit(ws, "finetune", _spec(gradient_accumulation=1, processes=2, strategy="fsdp",
                                                 checkpoint_every=5))
    assert job.plan["decisions"]["strategy"] == "fsdp" and "FSDP shards weights" in job.plan["explanation"]

    until(lambda: store.get(job.id).step >= 2 and rank_pids(store, job.id, 1), ws)
    lifecycle.cancel(ws, job.id)
    stopped = lifecycle.wait(ws, job.id, timeout_s=JOB_STALL_S)
    assert stopped.status == "cancelled", stopped.error
    checkpoint = Path(stopped.checkpoint)
    step = int(checkpoint.name.split("-")[1])
    assert 2 <= step < 30
    for part in ("pytorch_model_fsdp_0", "optimizer_0"):  # one DCP file per rank, and DCP's index
        assert {p.name for p in (checkpoint / part).iterdir()} == {"__0_0.distcp", "__1_0.distcp", ".metadata"}
    assert not (checkpoint / "model.safetensors").exists()

    # Its shards load on 1 rank (DCP reshards them) with twice the accumulation, keeping the global batch of 4.
    assert resume_accumulation(checkpoint, "fsdp", 1, 2, 1) == 2
    for strategy, ranks, message in [("ddp", 2, "written sharded by FSDP .* resume it with strategy `fsdp`"),
                                     ("fsdp", 3, "global batch of 4; 3 ranks of micro-batch 2 cannot make that batch")]:
        with pytest.raises(UserError, match=message):
            resume_accumulation(checkpoint, strategy, ranks, 2, 1)

    lifecycle.resume(ws, job.id)
    done = lifecycle.wait(ws, job.id, timeout_s=JOB_STALL_S)
    assert done.status == "succeeded", done.error
    losses = store.metrics(job.id, "loss")
    assert min(s for a, s, _, _ in losses if a == 2) == step + 1  # continued, not restarted
    curves = [{s: v for _, s, _, v in store.metrics(j.id, "loss")} for j in (one, job)]
    assert sorted(curves[0]) == sorted(curves[1]) == list(range(1, 31))
    gap = max(abs(curves[0][s] - curves[1][s]) for s in curves[0])
    print(f"stopped at step {step}; largest loss gap to one process {gap:.2e}")
    assert gap < LOSS_TOLERANCE, curves
    assert done.model_version and done.lineage["metrics"]["steps"] == 30  # the gathered model, evaluated
    params = JobRun(ws, job.id, done.mlflow_run_id).client.get_run(done.mlflow_run_id).data.params
    assert {k: params[k] for k in ("strategy", "processes", "world_size", "backend")} == {
        "strategy": "fsdp", "processes": "2", "world_size": "2", "backend": "gloo"}
    assert not any(alive(p) for p in rank_pids(store, job.id, 2))

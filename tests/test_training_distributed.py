"""Distributed fine-tuning on one machine: the plan chooses one device, DDP or FSDP from the device count and the
sharded memory estimate and says why; impossible topologies are refused clearly; an FSDP job with 2 CPU ranks
(gloo, launched by torchrun) stops every rank at the same step with a sharded (DCP) checkpoint when cancelled,
leaves no rank behind after a cancel or a crash, resumes on the loss curve of one uninterrupted process with the
same global batch, and records its topology in MLflow. That 2 DDP ranks give that curve too is checked with a
preempted job in test_training_preemption.py (one torchrun start serves both)."""
from __future__ import annotations

import os
import random
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from tests.rank_processes import alive, rank_pids

from core.errors import UserError
from runtimes.training.auto_config import DataProfile, auto_configure
from runtimes.training.distribution import topology_settings
from runtimes.training.hardware import Gpu, Hardware
from runtimes.training.memory_estimate import TrainingShape, estimate_memory
from runtimes.training.plan_explanation import explain

GIB = 2**30
LOSS_TOLERANCE = 1e-4  # the same examples per step; only the order of float additions differs


def cpu(cores: int = 2, ram_gib: float = 16) -> Hardware:
    return Hardware(cpu_cores=cores, ram_total_bytes=int(32 * GIB), ram_available_bytes=int(ram_gib * GIB),
                    cpu_flops=50e9)


def gpus(n: int, free_bytes: int) -> Hardware:
    cards = tuple(Gpu(index=i, name="NVIDIA H100 80GB HBM3", total_bytes=80 * GIB, free_bytes=free_bytes, bf16=True,
                      peak_flops=989e12) for i in range(n))
    return Hardware(cpu_cores=16, ram_total_bytes=128 * GIB, ram_available_bytes=100 * GIB, gpus=cards,
                    source="torch.cuda")


def lengths(n: int = 1000) -> DataProfile:
    rnd = random.Random(0)
    return DataProfile.from_lengths([rnd.randint(40, 400) for _ in range(n)])


# --- the plan ---------------------------------------------------------------------------------------------------

def test_one_process_on_cpu_unless_asked_and_two_cpu_processes_run_ddp_with_half_the_ram_each(shape):
    one = auto_configure(shape, lengths(), cpu(), "sft")
    assert (one.config.processes, one.config.strategy) == (1, "single")
    assert "ask for N CPU processes" in one.decision("processes").reason
    two = auto_configure(shape, lengths(), cpu(), "sft", {"processes": 2})
    c = two.config
    assert (c.processes, c.strategy) == (2, "ddp")
    assert c.micro_batch * c.gradient_accumulation * 2 == c.effective_batch == 16  # the same global batch
    assert two.budget_bytes == cpu().ram_available_bytes // 2  # the ranks share the machine's RAM
    assert "2 CPU processes (gloo)" in two.decision("strategy").reason
    assert "a whole copy fits on each of the 2 CPU processes (gloo)" in two.decision("strategy").reason
    text = explain(two)
    assert "on each of 2 ranks (DDP)" in text and "DDP keeps a whole copy of the model on each of 2 ranks" in text
    assert "strategy = ddp" in text and "processes = 2 [yours]" in text
    assert two.steps == one.steps  # the same global batch takes the same optimizer steps


def test_ddp_when_a_whole_copy_fits_on_each_gpu_fsdp_when_only_shards_do(shape):
    roomy = auto_configure(shape, lengths(), gpus(2, 40 * GIB), "sft")
    assert (roomy.config.processes, roomy.config.strategy, roomy.config.method) == (2, "ddp", "full")
    assert "fits on each of the 2 GPUs" in roomy.decision("strategy").reason
    assert "one process per GPU (2)" in roomy.decision("processes").reason

    # A card between what full fine-tuning needs sharded over 4 GPUs and what it needs whole: only FSDP fits it.
    run = TrainingShape(method="full", precision="bf16", micro_batch=1, seq_len=448, gradient_checkpointing=True,
                        device="cuda", ranks=4)
    whole, shards = estimate_memory(shape, run), estimate_memory(shape, replace(run, sharded=True))
    assert shards.weights < whole.weights / 2 and shards.optimizer == whole.optimizer // 4
    assert shards.gradients == whole.gradients // 8  # DDP's buckets double them; FSDP keeps a quarter
    free = int((whole.total + shards.total) / 2 / 0.9)
    tight = auto_configure(shape, lengths(), gpus(4, free), "sft", {"method": "full"})
    assert (tight.config.strategy, tight.config.processes) == ("fsdp", 4)
    reason = tight.decision("strategy").reason
    assert "a whole copy does not fit on one GPU" in reason and "FSDP2 through accelerate" in reason
    assert tight.fits and tight.estimate.total <= free
    assert "FSDP shards weights, gradients and optimizer states over 4 ranks" in explain(tight)


def test_a_named_strategy_is_kept_or_refused_clearly(shape):
    fsdp = auto_configure(shape, lengths(), gpus(2, 40 * GIB), "sft", {"strategy": "fsdp"})
    assert fsdp.config.strategy == "fsdp" and fsdp.decision("strategy").overridden
    assert fsdp.estimate.weights < auto_configure(shape, lengths(), gpus(2, 40 * GIB), "sft").estimate.weights
    cases = [
        (cpu(), {"strategy": "zero3", "processes": 2}, "needs DeepSpeed, which is not installed"),
        (cpu(), {"strategy": "ddp"}, "set `processes` to 2 or more"),
        (gpus(2, 40 * GIB), {"strategy": "single"}, "strategy `single` runs one process"),
        (cpu(cores=2), {"processes": 3}, "more than the 2 CPU cores"),
        (gpus(2, 40 * GIB), {"processes": 4}, r"more than the 2 GPU\(s\)"),
        (cpu(), {"strategy": "tensor"}, "override `strategy`"),
    ]
    for hardware, overrides, message in cases:
        with pytest.raises(UserError, match=message):
            auto_configure(shape, lengths(), hardware, "sft", overrides)


def test_the_command_lines_topology_flags():
    assert topology_settings(None, None, 2) == {"processes": 2}
    assert topology_settings(1, 2, None, gpus(2, 40 * GIB)) == {"processes": 2}
    assert topology_settings(None, None, None) == {}
    with pytest.raises(UserError, match="this machine has no GPU; ask for CPU processes with --processes N"):
        topology_settings(None, 2, None, cpu())
    with pytest.raises(UserError, match="--processes 4 and --gpus-per-node 2 disagree"):
        topology_settings(None, 2, 4, gpus(2, 40 * GIB))


# --- jobs with 2 CPU ranks ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ws(demos_workspace):
    return demos_workspace(rows=40)


def _spec(**settings):
    return {"model": "tiny", "table": "demos", "technique": "sft", "eval_fraction": 0.1,
            "settings": {"micro_batch": 2, "max_length": 32, "learning_rate": 1e-3, **settings}}


@pytest.mark.slow
def test_an_fsdp_job_cancelled_stops_every_rank_with_sharded_checkpoints_survives_a_crash_and_keeps_the_curve(ws):
    from runtimes.jobs import lifecycle
    from runtimes.jobs.store import JobStore
    from runtimes.models.tracking import JobRun
    from tests.waiting import JOB_STALL_S, until

    store = JobStore(ws)
    job = lifecycle.submit(ws, "finetune", _spec(max_steps=30, checkpoint_every=5, processes=2, strategy="fsdp"))
    pids = until(lambda: store.get(job.id).step >= 2 and rank_pids(store, job.id, 1), ws)
    lifecycle.cancel(ws, job.id)
    stopped = lifecycle.wait(ws, job.id, timeout_s=JOB_STALL_S)
    assert stopped.status == "cancelled", stopped.error
    step = int(Path(stopped.checkpoint).name.split("-")[1])
    assert 2 <= step < 30 and f"stopped at step {step} with a checkpoint on every rank" in store.events(job.id)[-1].message
    assert {p.name for p in Path(stopped.checkpoint).glob("rng_state_*.pth")} == {"rng_state_0.pth",
                                                                                 "rng_state_1.pth"}
    for part in ("pytorch_model_fsdp_0", "optimizer_0"):  # sharded: one DCP file per rank and DCP's index
        assert {p.name for p in (Path(stopped.checkpoint) / part).iterdir()} == {"__0_0.distcp", "__1_0.distcp",
                                                                                 ".metadata"}
    assert not any(alive(p) for p in pids)

    # Resumed, then the worker is killed: torchrun and both ranks go with it; recovery continues from a checkpoint.
    lifecycle.resume(ws, job.id)
    second = until(lambda: (j := store.get(job.id)).step >= step + 2 and rank_pids(store, job.id, 2) and j, ws)
    pids = rank_pids(store, job.id, 2)
    os.kill(second.pid, signal.SIGKILL)
    until(lambda: not any(alive(p) for p in [second.pid, *pids]), ws)
    assert lifecycle.recover(ws) == [job.id]
    done = lifecycle.wait(ws, job.id, timeout_s=JOB_STALL_S)
    assert done.status == "succeeded", done.error
    losses = store.metrics(job.id, "loss")
    attempts = [{s for a, s, _, _ in losses if a == n} for n in (1, 2, 3)]
    assert min(attempts[1]) == step + 1 and max(attempts[2]) == 30  # continued, not restarted
    assert not any(alive(p) for p in rank_pids(store, job.id, 3))
    curve = {s: v for _, s, _, v in losses}  # the last attempt's where a recovery repeated steps
    reference = one_process_losses(ws, done.plan["settings"])
    assert sorted(curve) == sorted(reference) == list(range(1, 31))
    gap = max(abs(curve[s] - reference[s]) for s in curve)
    print(f"cancelled at step {step}; largest loss gap to one uninterrupted process {gap:.2e}")
    assert gap < LOSS_TOLERANCE, (curve, reference)
    params = JobRun(ws, job.id, done.mlflow_run_id).client.get_run(done.mlflow_run_id).data.params
    assert {k: params[k] for k in ("strategy", "processes", "world_size", "backend")} == {
        "strategy": "fsdp", "processes": "2", "world_size": "2", "backend": "gloo"}


def one_process_losses(ws, settings: dict) -> dict[int, float]:
    """The loss at each step of the same training in this process, uninterrupted, with the same global batch."""
    import tempfile

    from runtimes.models.sources import resolve_model
    from runtimes.training.datasets.preparation import DatasetSpec, prepare_dataset
    from runtimes.training.jobs.trainer_factory import build_trainer

    prepared = prepare_dataset(ws, DatasetSpec(table="demos", technique="sft", eval_fraction=0.1,
                                               seed=settings["seed"]))
    one = {**settings, "processes": 1, "strategy": "single",
           "gradient_accumulation": settings["gradient_accumulation"] * settings["processes"]}
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer("sft", one, resolve_model("tiny", ws), prepared, Path(out), [])
        trainer.train()
    return {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}

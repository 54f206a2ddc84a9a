"""One rank of a distributed fine-tuning job, as torchrun starts it: `python -m runtimes.training.jobs.rank_main JOB
--workspace WS`. Each rank builds the job's trainer on the data its worker validated; the Trainer joins torchrun's
process group and wraps the model (DDP or FSDP). Every rank agrees on a stop at each step's end.

Rank 0 alone writes progress, metrics, MLflow, the saved model and the report its worker reads; the others never
write to the job store.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from runtimes.training.jobs.rank_launch import data_path, die_with_parent, result_path, stop_flag


class AgreedStop(TrainerCallback):
    """At each step's end, all ranks learn whether any saw the stop flag or a SIGTERM of its own (an all-reduce),
    so all of them checkpoint and stop at the same step; a rank stopping alone would leave the others waiting
    forever."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag
        self.stopped = False
        self.noticed = False  # this rank got SIGTERM (torchrun forwards its own; a machine's end reaches every one)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 (transformers' signature)
        import torch
        import torch.distributed as dist

        seen = torch.tensor([1.0 if self.noticed or self.flag.exists() else 0.0], device=args.device)
        dist.all_reduce(seen, op=dist.ReduceOp.MAX)
        if seen.item() > 0:
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        return control


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m runtimes.training.jobs.rank_main")
    parser.add_argument("job_id")
    parser.add_argument("--workspace", required=True)
    args = parser.parse_args(argv)
    from core.offline import apply_offline_env
    from core.workspace import Workspace
    from runtimes.jobs.store import JobStore

    apply_offline_env()
    ws = Workspace.resolve(args.workspace).require()
    train_rank(ws, JobStore(ws), args.job_id, int(os.environ["RANK"]))
    return 0


def train_rank(ws: Any, store: Any, job_id: str, rank: int) -> None:
    import torch.distributed as dist

    from runtimes.jobs.lifecycle import job_dir
    from runtimes.judging.judge import local_judge_settings
    from runtimes.models.sources import resolve_model
    from runtimes.models.tracking import JobRun
    from runtimes.training.jobs.progress import ProgressCallback
    from runtimes.training.jobs.sharded_checkpoint import (Topology, TopologyRecord, resume_accumulation,
                                                           save_full_model)
    from runtimes.training.jobs.signal_check import DEFAULT_MAX_SHARE, SignalCheck
    from runtimes.training.jobs.spec import JobSpec
    from runtimes.training.jobs.trainer_factory import build_trainer

    job = store.get(job_id)
    folder = job_dir(ws, job_id)
    spec = JobSpec.model_validate(job.spec)
    settings = dict(job.plan["settings"])
    with open(data_path(folder), "rb") as f:
        prepared = pickle.load(f)
    resume = job.checkpoint if job.checkpoint and Path(job.checkpoint).is_dir() else None
    world_size = int(os.environ["WORLD_SIZE"])
    if resume:  # a checkpoint of another world size continues with the global batch it was written with
        settings["gradient_accumulation"] = resume_accumulation(
            Path(resume), settings.get("strategy", "ddp"), world_size, int(settings["micro_batch"]),
            int(settings["gradient_accumulation"]))
    topology = Topology(strategy=settings.get("strategy", "ddp"), world_size=world_size,
                        micro_batch=int(settings["micro_batch"]),
                        gradient_accumulation=int(settings["gradient_accumulation"]))
    stop = AgreedStop(stop_flag(folder))
    if threading.current_thread() is threading.main_thread():  # Ray Train runs a rank in a thread of its worker
        signal.signal(signal.SIGTERM, lambda *_: setattr(stop, "noticed", True))
    # Every rank sees the same gathered logs, so each reaches the same verdict and stops at the same step.
    signal_check = SignalCheck(float(settings.get("max_degenerate_share", DEFAULT_MAX_SHARE)))
    callbacks: list[Any] = [stop, signal_check, TopologyRecord(topology)]
    if rank == 0:
        tracking = JobRun(ws, job.id, job.mlflow_run_id)
        callbacks.insert(0, ProgressCallback(store, job.id, job.attempt, tracking, lambda: False))
    trainer = build_trainer(spec.technique, local_judge_settings(ws, settings), resolve_model(spec.model, ws),
                            prepared, folder / "checkpoints", callbacks)
    pids: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(pids, os.getpid())
    if rank == 0:
        store.add_event(job.id, "ranks", f"{len(pids)} ranks ({settings.get('strategy')}) in processes "
                        + ", ".join(map(str, pids)), {"pids": pids, "strategy": settings.get("strategy")})
        tracking.log_params({"world_size": world_size, "backend": dist.get_backend()})  # the topology it ran on
    trainer.train(resume_from_checkpoint=resume)
    verdict = signal_check.verdict()
    if not stop.stopped and verdict is None and trainer.is_fsdp_enabled:
        save_full_model(trainer, folder / "model", rank)  # every rank takes part in the gather; rank 0 writes
    elif not stop.stopped and verdict is None:
        trainer.save_model(str(folder / "model"))
        if rank == 0:
            trainer.processing_class.save_pretrained(str(folder / "model"))
    if rank == 0:
        result_path(folder).write_text(json.dumps({"step": trainer.state.global_step, "stopped": stop.stopped,
                                                   "verdict": verdict}), encoding="utf-8")
    dist.barrier()  # no rank leaves while rank 0 still writes, so torchrun sees them all end together


if __name__ == "__main__":
    sys.exit(main())

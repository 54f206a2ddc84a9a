"""One rank of a job with peer recovery, as its worker starts it: `python -m runtimes.training.jobs.peer_replica JOB
--workspace WS --replica R --replicas N --lighthouse ADDR [--replacement]`. The rank is a torchft replica group of one
process training the job's trainer on its share of the rows; `PeerStep` turns each optimizer step into a torchft
step: a quorum before the forward pass (where a replacement receives model, optimizer, scheduler and step from a
healthy peer), gradients averaged over the quorum through the Manager, and the update applied only if it commits.

Rank 0 alone writes progress, metrics, checkpoints, the saved model and the report; the others write only files in
the job's `replicas/` folder, which their worker turns into events.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from runtimes.training.jobs.rank_launch import data_path, die_with_parent, result_path, stop_flag

NO_PEER_EXIT = 3  # a replacement found no peer further on to heal from


def replicas_dir(folder: Path) -> Path:
    return folder / "replicas"


class NoPeer(RuntimeError):
    pass


class PeerStep(TrainerCallback):
    """The torchft side of each optimizer step, inside TRL's own training loop (the Trainer's optimizer step is
    left as it is: a step that does not commit reaches it with no gradients, which AdamW leaves untouched)."""

    def __init__(self, replica: int, lighthouse: str, folder: Path, replacement: bool, replicas: int) -> None:
        self.replica, self.lighthouse, self.folder = replica, lighthouse, folder
        self.replacement, self.replicas = replacement, replicas
        self.manager: Any = None
        self.noticed = False   # this rank got SIGTERM
        self.stopped = False
        self._stop_agreed = False
        self._first = True
        self.uncommitted = 0

    # --- the state a peer hands over ---------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"model": {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "global_step": self.state.global_step}

    def _load(self, sd: dict[str, Any]) -> None:
        missing = self.model.load_state_dict(sd["model"], strict=False).unexpected_keys
        if missing:
            raise RuntimeError(f"a peer's state names parameters this model lacks: {missing[:3]}")
        self.optimizer.load_state_dict(sd["optimizer"])
        self.scheduler.load_state_dict(sd["scheduler"])
        self.state.global_step = int(sd["global_step"])
        self.healed_bytes = sum(t.numel() * t.element_size() for t in sd["model"].values())

    # --- the Trainer's hooks ----------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None,  # noqa: ANN001
                       **kwargs):
        import torch
        from torch.distributed import TCPStore
        from torchft import Manager, ProcessGroupGloo, ProcessGroupNCCL

        self.model, self.optimizer, self.scheduler, self.state = model, optimizer, lr_scheduler, state
        # Gradients are clipped once averaged over the quorum, as DDP clips its averaged gradients.
        self.max_grad_norm, args.max_grad_norm = args.max_grad_norm, 0.0
        self._store = TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)  # this group's own
        pg = ProcessGroupNCCL if torch.cuda.is_available() else ProcessGroupGloo
        self.manager = Manager(pg=pg(timeout=timedelta(seconds=30)), min_replica_size=1, use_async_quorum=False,
                               load_state_dict=self._load, state_dict=self._state, replica_id=f"rank_{self.replica}",
                               store_addr="127.0.0.1", store_port=self._store.port, rank=0, world_size=1,
                               lighthouse_addr=self.lighthouse, timeout=timedelta(seconds=30),
                               quorum_timeout=timedelta(seconds=600))
        ready = replicas_dir(self.folder)
        (ready / f"ready-{self.replica}").touch()
        # The first quorum holds every rank, so an uninterrupted job trains at one world size from its first step.
        deadline = time.time() + 600
        while not self.replacement and not all((ready / f"ready-{r}").exists() for r in range(self.replicas)):
            if time.time() > deadline:
                raise RuntimeError("the other ranks did not start within 600 s")
            time.sleep(0.05)

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        started = time.time()
        self.manager.start_quorum()  # synchronous: a replacement is healed from a peer here, before its forward pass
        if self._first and self.replacement:
            if self.manager.current_step() == 0 and self.manager.num_participants() == 1:
                raise NoPeer("no peer is training any more to receive the state from")
            _write(replicas_dir(self.folder) / f"healed-{self.replica}-{os.getpid()}.json", {
                "replica": self.replica, "pid": os.getpid(), "step": self.state.global_step,
                "seconds": round(time.time() - started, 3), "bytes": getattr(self, "healed_bytes", 0),
                "participants": self.manager.num_participants(), "t": time.time()})
        self._first = False

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
        import torch
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        params = [p for p in model.parameters() if p.grad is not None]
        grads = [p.grad for p in params]
        stop = torch.ones(1, device=grads[0].device) if self.noticed or stop_flag(self.folder).exists() \
            else torch.zeros(1, device=grads[0].device)
        flat = _flatten_dense_tensors([*[g.float() for g in grads], stop])  # one all-reduce for the step
        self.manager.allreduce(flat).wait()  # the average over this step's quorum; a dead peer: no commit
        if not self.manager.should_commit():  # the average may be garbage: this step changes nothing
            self.uncommitted += 1
            self._stop_agreed = bool(stop.item())
            for p in params:
                p.grad = None
            return
        for g, averaged in zip(grads, _unflatten_dense_tensors(flat[:-1], grads), strict=True):
            g.copy_(averaged)
        self._stop_agreed = bool(flat[-1] > 0) or bool(stop.item())
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self._stop_agreed:
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        if self.replica != 0:
            control.should_save = False  # every rank holds the same state; rank 0's checkpoint is the job's
        return control


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m runtimes.training.jobs.peer_replica")
    parser.add_argument("job_id")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--replica", type=int, required=True)
    parser.add_argument("--replicas", type=int, required=True)
    parser.add_argument("--lighthouse", required=True)
    parser.add_argument("--replacement", action="store_true")
    args = parser.parse_args(argv)
    from core.offline import apply_offline_env
    from core.workspace import Workspace
    from runtimes.jobs.store import JobStore

    apply_offline_env()
    ws = Workspace.resolve(args.workspace).require()
    try:
        train_replica(ws, JobStore(ws), args.job_id, args.replica, args.replicas, args.lighthouse, args.replacement)
    except NoPeer as e:
        print(f"rank {args.replica}: {e}", file=sys.stderr)
        return NO_PEER_EXIT
    return 0


def train_replica(ws: Any, store: Any, job_id: str, replica: int, replicas: int, lighthouse: str,
                  replacement: bool) -> None:
    from runtimes.jobs.lifecycle import job_dir
    from runtimes.models.sources import resolve_model
    from runtimes.models.tracking import JobRun
    from runtimes.training.jobs.progress import ProgressCallback
    from runtimes.training.jobs.signal_check import DEFAULT_MAX_SHARE, SignalCheck
    from runtimes.training.jobs.spec import JobSpec
    from runtimes.training.jobs.trainer_factory import build_trainer

    job = store.get(job_id)
    folder = job_dir(ws, job_id)
    spec = JobSpec.model_validate(job.spec)
    settings = {**job.plan["settings"], "strategy": "single"}  # one process per replica group
    with open(data_path(folder), "rb") as f:
        prepared = pickle.load(f)
    # Each rank reads its own interleaved share of the rows, as a distributed sampler gives it.
    prepared = replace(prepared, train=prepared.train.shard(num_shards=replicas, index=replica, contiguous=False))
    peer = PeerStep(replica, lighthouse, folder, replacement, replicas)
    signal.signal(signal.SIGTERM, lambda *_: setattr(peer, "noticed", True))
    signal_check = SignalCheck(float(settings.get("max_degenerate_share", DEFAULT_MAX_SHARE)))
    callbacks: list[Any] = [peer, signal_check]
    if replica == 0:
        tracking = JobRun(ws, job.id, job.mlflow_run_id)
        callbacks.insert(0, ProgressCallback(store, job.id, job.attempt, tracking, lambda: False))
    trainer = build_trainer(spec.technique, settings, resolve_model(spec.model, ws), prepared,
                            folder / "checkpoints", callbacks)
    resume = job.checkpoint if job.checkpoint and Path(job.checkpoint).is_dir() and not replacement else None
    try:
        trainer.train(resume_from_checkpoint=resume)
        verdict = signal_check.verdict()
        if replica == 0:
            if not peer.stopped and verdict is None:
                trainer.save_model(str(folder / "model"))
                trainer.processing_class.save_pretrained(str(folder / "model"))
            result_path(folder).write_text(json.dumps({
                "step": trainer.state.global_step, "stopped": peer.stopped, "verdict": verdict,
                "uncommitted": peer.uncommitted}), encoding="utf-8")
    finally:
        if peer.manager is not None:
            peer.manager.shutdown(wait=False)


if __name__ == "__main__":
    sys.exit(main())

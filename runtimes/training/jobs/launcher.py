"""Starting, queueing, cancelling and resuming jobs. A job runs as its own detached process
(`python -m runtimes.training.jobs.worker`), so it outlives the command or app that started it.

One job per GPU by default, one at a time on CPU; the rest wait `queued` and start when a slot frees.
It never trains in-process and never kills a process it cannot tell is the job's own worker.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from core.errors import UserError
from core.workspace import Workspace
from runtimes.job_process import is_worker_alive, spawn_worker  # recovery and the CLI import is_worker_alive here
from runtimes.training.jobs.store import ACTIVE, FINAL, Job, JobSpec, JobStore

STARTING_GRACE_S = 60.0  # a claimed job whose worker has not yet written its pid is starting, not dead


def job_slots() -> int:
    """How many jobs may run at once: one per GPU (`LATHE_JOB_SLOTS` overrides), one on a CPU-only machine."""
    if os.environ.get("LATHE_JOB_SLOTS", "").isdigit():
        return max(1, int(os.environ["LATHE_JOB_SLOTS"]))
    if shutil.which("nvidia-smi"):  # cheaper than importing torch just to count devices
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
            return max(1, sum(1 for line in out.splitlines() if line.startswith("GPU ")))
        except (OSError, subprocess.SubprocessError):
            pass
    return 1


def submit(ws: Workspace, spec: JobSpec | dict) -> Job:
    """Queue a job and start it if a slot is free. The request is checked first — settings, model, data (read
    through the SQL guard, every row checked) and an RLAIF judge — so a request that cannot train creates no job;
    the worker checks again before any compute (the data may change while the job waits)."""
    spec = spec if isinstance(spec, JobSpec) else JobSpec.parse(spec)
    check_request(ws, spec)
    store = JobStore(ws)
    job = store.create(spec)
    dispatch(ws)
    return store.get(job.id)


def check_request(ws: Workspace, spec: JobSpec) -> None:
    """Everything about a request that can be refused without compute; raises `UserError`."""
    from runtimes.training.datasets.preparation import DatasetSpec, plan_dataset
    from runtimes.training.jobs.trainer_factory import resolve_settings
    from runtimes.models.sources import resolve_model
    from runtimes.training.planning import check_judge

    settings = resolve_settings(spec.settings, spec.technique)  # unknown, ill-typed or out-of-range settings
    resolve_model(spec.model, ws)
    data = plan_dataset(ws, DatasetSpec(table=spec.table, sql=spec.sql, technique=spec.technique,
                                        eval_fraction=spec.eval_fraction, seed=settings["seed"], mapping=spec.mapping))
    if spec.technique in ("sft", "dpo"):  # GRPO's micro-batch counts completions, several per row
        check_rows_fit(spec.settings, len(data.examples), spec.eval_fraction)
    check_judge(ws, spec.technique, settings)


def check_rows_fit(given: dict, rows: int, eval_fraction: float) -> None:
    """A micro-batch the user set larger than the rows to train on cannot be filled: refused with the number."""
    train = rows - (min(rows - 1, max(1, round(rows * eval_fraction))) if eval_fraction > 0 and rows > 1 else 0)
    if "micro_batch" in given and int(given["micro_batch"]) > train:
        raise UserError(f"setting `micro_batch` = {given['micro_batch']:,} is more than the {train:,} rows to "
                        f"train on: it takes from 1 to {train:,}")


def dispatch(ws: Workspace) -> list[str]:
    """Start queued jobs while slots are free; returns the ids started."""
    store = JobStore(ws)
    started: list[str] = []
    while (job := store.claim_next(job_slots())) is not None:
        pid = _spawn(ws, job.id)
        store.update(job.id, pid=pid)
        started.append(job.id)
    return started


def cancel(ws: Workspace, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop (SIGTERM: it checkpoints, then ends
    `cancelled`, resumable)."""
    store = JobStore(ws)
    job = store.get(job_id)
    if job.status in FINAL:
        raise UserError(f"job {job_id} is already {job.status}; nothing to cancel")
    if job.status == "queued":
        store.set_status(job_id, "cancelled", "cancelled while queued", expect=("queued",))
        return store.get(job_id)
    store.update(job_id, stop_requested=1)
    if job.pid and is_worker_alive(job.pid, job_id):
        os.kill(job.pid, signal.SIGTERM)
        store.add_event(job_id, "cancel", "stop requested: the job checkpoints and stops")
    else:
        store.set_status(job_id, "cancelled", "cancelled (its process was gone)", expect=ACTIVE)
    return store.get(job_id)


def delete(ws: Workspace, job_id: str) -> Job:
    """Remove a job that is not running: its rows and its run folder (checkpoints, data, report). A job whose
    model is registered is kept: the registered version's weights live in its run folder."""
    store = JobStore(ws)
    job = store.get(job_id)
    if job.status not in FINAL:
        raise UserError(f"job {job_id} is {job.status}: cancel it first (`lathe jobs cancel {job_id}`), "
                        "then delete it once it has stopped")
    if job.model_version:
        raise UserError(f"job {job_id} registered {job.model_version}, whose weights live in its run folder; "
                        "it is kept")
    store.delete(job_id)
    folder = ws.root / "runs" / job_id
    if folder.is_dir():
        shutil.rmtree(folder)
    return job


def resume(ws: Workspace, job_id: str) -> Job:
    """Queue a cancelled or failed job again; it continues from its last checkpoint."""
    store = JobStore(ws)
    job = store.get(job_id)
    if job.status not in ("cancelled", "failed"):
        raise UserError(f"job {job_id} is {job.status}; only a cancelled or failed job can be resumed")
    where = f"from {Path(job.checkpoint).name}" if job.checkpoint else "from the start (no checkpoint yet)"
    store.set_status(job_id, "queued", f"resume requested; queued to continue {where}", expect=("cancelled", "failed"))
    dispatch(ws)
    return store.get(job_id)


def wait(ws: Workspace, job_id: str, timeout_s: float = 600.0, poll_s: float = 0.2) -> Job:
    """Block until the job reaches a final status (for scripts and the CLI's `--wait`)."""
    store = JobStore(ws)
    deadline = time.monotonic() + timeout_s
    while True:
        job = store.get(job_id)
        if job.status in FINAL:
            return job
        if time.monotonic() > deadline:
            raise UserError(f"job {job_id} is still {job.status} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def log_path(ws: Workspace, job_id: str) -> Path:
    return ws.root / "runs" / job_id / "worker.log"


def _spawn(ws: Workspace, job_id: str) -> int:
    return spawn_worker(ws, "runtimes.training.jobs.worker", job_id, log_path(ws, job_id))

"""One lifecycle for every kind of job: submit (the approved plan is stored with the job), dispatch to a detached
worker process, cancel, resume, recover after a dead process, delete, and wait or follow until it ends.

It never runs a job's work in the caller's process and never signals a process it cannot tell is the job's worker.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.jobs.process import is_worker_alive, spawn_worker
from runtimes.jobs.kinds import Planned, kind
from runtimes.jobs.store import ACTIVE, FINAL, RESUMABLE, Job, JobStore

STARTING_GRACE_S = 60.0  # a claimed job whose worker has not yet written its pid is starting, not dead
WORKER = "runtimes.jobs.worker"
STALL_S = 600.0  # `wait` gives up when a job shows no change at all for this long


def gpu_slots() -> int:
    """One job per GPU (`LATHE_JOB_SLOTS` overrides), one on a CPU-only machine."""
    if (slots := os.environ.get("LATHE_JOB_SLOTS", "")).isascii() and slots.isdigit():
        return max(1, int(slots))
    if shutil.which("nvidia-smi"):  # cheaper than importing torch just to count devices
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
            return max(1, sum(1 for line in out.splitlines() if line.startswith("GPU ")))
        except (OSError, subprocess.SubprocessError):
            pass
    return 1


def job_dir(ws: Workspace, job_id: str) -> Path:
    return ws.root / "runs" / job_id


def log_path(ws: Workspace, job_id: str) -> Path:
    return job_dir(ws, job_id) / "worker.log"


def submit(ws: Workspace, kind_name: str, spec: Any = None, *, planned: Planned | None = None,
           principal: Principal | None = None) -> Job:
    """Queue a job with its approved plan (`planned`, or the kind's plan of `spec` made now) and start it if a slot is
    free. A request the kind refuses creates no job."""
    k = kind(kind_name)
    if planned is None:
        planned = k.plan(ws, spec, principal)
    store = JobStore(ws)
    job = store.create(k.name, planned.spec, planned.plan, planned.progress)
    dispatch(ws)
    return store.get(job.id)


def dispatch(ws: Workspace) -> list[str]:
    """Start queued jobs, oldest first, while their kind has a free slot; returns the ids started."""
    store = JobStore(ws)
    started: list[str] = []
    for job in store.list(("queued",)):
        k = kind(job.kind)
        if store.claim(job.id, k.slots() if k.slots is not None else None):
            pid = spawn_worker(ws, WORKER, job.id, log_path(ws, job.id))
            store.update(job.id, pid=pid)
            started.append(job.id)
    return started


def cancel(ws: Workspace, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop (SIGTERM: it saves its work and ends
    `cancelled`, resumable)."""
    store = JobStore(ws)
    job = store.get(job_id)
    if job.status in FINAL:
        raise UserError(f"job {job_id} is already {job.status}; nothing to cancel")
    if job.status == "queued" and store.set_status(job_id, "cancelled", "cancelled while queued", expect=("queued",)):
        return store.get(job_id)
    store.update(job_id, stop_requested=1)
    if job.pid and is_worker_alive(job.pid, job_id):
        os.kill(job.pid, signal.SIGTERM)
        store.add_event(job_id, "cancel", "stop requested: the job saves its work and stops")
    else:
        store.set_status(job_id, "cancelled", "cancelled (its process was gone)", expect=("queued", *ACTIVE))
    return store.get(job_id)


def resume(ws: Workspace, job_id: str) -> Job:
    """Queue a cancelled or failed job again; it continues from what it saved."""
    store = JobStore(ws)
    job = store.get(job_id)
    if job.status not in RESUMABLE:
        raise UserError(f"job {job_id} is {job.status}; only a cancelled or failed job can be resumed")
    continues = kind(job.kind).resumes_from(job)
    if not store.set_status(job_id, "queued", f"resume requested; queued to continue {continues}", expect=RESUMABLE):
        raise UserError(f"job {job_id} was resumed by another process just now; follow it with "
                        f"`lathe jobs show {job_id}`")
    dispatch(ws)
    return store.get(job_id)


def recover(ws: Workspace) -> list[str]:
    """Requeue the active jobs whose process died (SIGKILL, a crash, a reboot) and start what the slots allow;
    a job that died before honouring a cancel ends cancelled. Returns the ids requeued."""
    store = JobStore(ws)
    requeued: list[str] = []
    now = time.time()
    for job in store.list(ACTIVE):
        if job.pid is None and now - (job.started_at or job.created_at) < STARTING_GRACE_S:
            continue
        if job.pid is not None and is_worker_alive(job.pid, job.id):
            continue
        if job.stop_requested:
            store.set_status(job.id, "cancelled", "cancelled (its process was gone)", expect=(job.status,))
            continue
        k = kind(job.kind)
        if store.set_status(job.id, "queued", f"its process died at {k.where(job)}; resuming {k.resumes_from(job)}",
                            expect=(job.status,)):
            requeued.append(job.id)
    dispatch(ws)
    return requeued


def delete(ws: Workspace, job_id: str) -> Job:
    """Remove a job that is not running: its rows and its run folder, unless its kind must keep it."""
    store = JobStore(ws)
    job = store.get(job_id)
    if job.status not in FINAL:
        raise UserError(f"job {job_id} is {job.status}: cancel it first (`lathe jobs cancel {job_id}`), "
                        "then delete it once it has stopped")
    if (why := kind(job.kind).kept_because(job)) is not None:
        raise UserError(f"job {job_id} {why}; it is kept")
    store.delete(job_id)
    if job_dir(ws, job_id).is_dir():
        shutil.rmtree(job_dir(ws, job_id))
    return job


def follow(ws: Workspace, job_id: str, poll_s: float = 0.5, stall_s: float | None = STALL_S) -> Iterator[Job]:
    """The job each time its status, progress or events change, until it ends (the last one yielded is final).
    With `stall_s`, raises `UserError` once nothing at all has changed for that long: a job that still advances is
    followed however long it takes."""
    store = JobStore(ws)
    seen: tuple[Any, ...] | None = None
    changed = time.monotonic()
    while True:
        job = store.get(job_id)
        now = (job.status, job.progress, job.attempt, store.last_event_seq(job_id))
        if now != seen:
            seen, changed = now, time.monotonic()
            yield job
        if job.status in FINAL:
            return
        if stall_s is not None and time.monotonic() - changed > stall_s:
            raise UserError(f"job {job_id} is still {job.status} and nothing changed for {stall_s:.0f} s")
        time.sleep(poll_s)


def wait(ws: Workspace, job_id: str, timeout_s: float | None = STALL_S, poll_s: float = 0.2,
         on_progress: Callable[[Job], None] | None = None) -> Job:
    """Block until the job ends; `timeout_s` is how long it may go without any change before this gives up."""
    job = None
    for job in follow(ws, job_id, poll_s, stall_s=timeout_s):
        if on_progress is not None:
            on_progress(job)
    assert job is not None
    return job

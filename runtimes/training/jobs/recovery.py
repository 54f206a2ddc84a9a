"""Recovery on start: a job left `validating` or `running` whose process died (SIGKILL, a crash, a machine
restart) is queued again and continues from its last checkpoint, without asking anyone.

It never touches a job whose worker is still alive, nor one that just started and has not written its pid.
"""
from __future__ import annotations

import time
from pathlib import Path

from core.workspace import Workspace
from runtimes.training.jobs.launcher import STARTING_GRACE_S, dispatch, is_worker_alive
from runtimes.training.jobs.store import ACTIVE, JobStore


def recover(ws: Workspace) -> list[str]:
    """Requeue the jobs whose process died and start what the slots allow; returns the ids requeued."""
    store = JobStore(ws)
    requeued: list[str] = []
    now = time.time()
    for job in store.list(ACTIVE):
        if job.pid is None and job.started_at and now - job.started_at < STARTING_GRACE_S:
            continue
        if job.pid is not None and is_worker_alive(job.pid, job.id):
            continue
        where = f"from {Path(job.checkpoint).name}" if job.checkpoint else "from the start (no checkpoint yet)"
        if store.set_status(job.id, "queued", f"its process died at step {job.step}; resuming {where}",
                            expect=(job.status,)):
            requeued.append(job.id)
    if requeued or store.list(("queued",)):
        dispatch(ws)
    return requeued

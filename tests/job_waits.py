"""Waits on jobs that follow their progress: a condition is waited for as long as the workspace's jobs advance
(status, progress, attempt, events), and fails only once nothing at all changed for STALL_S. Also a hold on a
batch's spool, which stops its worker at its next commit (to kill or cancel it mid-way)."""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from core.workspace import Workspace

STALL_S = 600.0  # nothing changed for this long: the job is stuck, not slow


def until(pred: Callable[[], Any], ws: Workspace, poll: float = 0.02, stall_s: float = STALL_S) -> Any:
    from runtimes.jobs.store import JobStore

    store = JobStore(ws)

    def state() -> list[tuple[Any, ...]]:
        return [(j.status, j.progress, j.attempt, store.last_event_seq(j.id)) for j in store.list()]

    seen, changed = state(), time.monotonic()
    while not (value := pred()):
        if (now := state()) != seen:
            seen, changed = now, time.monotonic()
        if time.monotonic() - changed > stall_s:
            raise AssertionError(f"no job changed for {stall_s:.0f} s: {seen}")
        time.sleep(poll)
    return value


def spool_count(ws: Workspace, job_id: str) -> int:
    """Predictions a batch job has committed so far."""
    from runtimes.jobs.lifecycle import job_dir

    path = job_dir(ws, job_id) / "predictions.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=0.1) as db:
            return db.execute("SELECT count(*) FROM predictions").fetchone()[0]
    except sqlite3.OperationalError:  # created but not yet given its table, or busy this instant
        return 0


def hold_spool_after(ws: Workspace, job_id: str, rows: int) -> sqlite3.Connection:
    """Take the spool's write lock once at least `rows` are committed: the worker then blocks at its next commit
    (for up to its busy timeout) until the hold is rolled back."""
    from runtimes.jobs.lifecycle import job_dir

    until(lambda: spool_count(ws, job_id) >= rows, ws)
    db = sqlite3.connect(job_dir(ws, job_id) / "predictions.sqlite", timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    return db

"""A hold on a batch job's spool of predictions, which stops its worker at its next commit, so that a test can
kill or cancel it mid-way; and the count of what it has committed so far."""
from __future__ import annotations

import sqlite3

from core.workspace import Workspace
from tests.waiting import until


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

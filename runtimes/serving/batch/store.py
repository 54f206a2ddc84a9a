"""Batch inference jobs and their events in the workspace's `state.sqlite`, beside the training jobs and with the
same statuses, so that both kinds read alike.

Every write is one short transaction, shared by the worker, the CLI and the app from several processes. It never
starts or signals a process (batch.py does) and never runs a model.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from core.errors import UserError
from catalog.suggestions import unknown
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace
from runtimes.training.jobs.store import ACTIVE, FINAL, Event, Status

__all__ = ["ACTIVE", "FINAL", "BatchJob", "BatchStore", "Event"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_jobs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, plan TEXT NOT NULL, created_at REAL NOT NULL,
    started_at REAL, finished_at REAL, pid INTEGER, attempt INTEGER NOT NULL DEFAULT 0, error TEXT,
    rows_total INTEGER NOT NULL DEFAULT 0, rows_done INTEGER NOT NULL DEFAULT 0, output_table TEXT,
    source_hash TEXT, stop_requested INTEGER NOT NULL DEFAULT 0, queued_at REAL);
CREATE TABLE IF NOT EXISTS batch_events (
    job_id TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT);
CREATE INDEX IF NOT EXISTS batch_events_job ON batch_events (job_id, seq);
"""
_FIELDS = ("pid", "attempt", "error", "rows_total", "rows_done", "output_table", "source_hash", "stop_requested",
           "started_at")


@dataclass(frozen=True)
class BatchJob:
    id: str
    status: str
    plan: dict[str, Any]  # runtimes.serving.batch.transform.BatchPlan as JSON: what the job runs, fixed at submit
    created_at: float
    started_at: float | None
    finished_at: float | None
    pid: int | None
    attempt: int
    error: str | None
    rows_total: int
    rows_done: int
    output_table: str | None
    source_hash: str | None
    stop_requested: bool
    queued_at: float | None  # when it was last queued (created, resumed, restarted)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class BatchStore:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        ensure_schema(ws.state_path, _SCHEMA)

    def _db(self, immediate: bool = False) -> Any:
        return transaction(self.ws.state_path, immediate)

    def create(self, plan: dict[str, Any], rows_total: int) -> BatchJob:
        job_id = f"batch-{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
        with self._db() as db:
            now = time.time()
            db.execute("INSERT INTO batch_jobs (id, status, plan, created_at, queued_at, rows_total) "
                       "VALUES (?, 'queued', ?, ?, ?, ?)", (job_id, json.dumps(plan), now, now, rows_total))
            _event(db, job_id, "status", "queued", {"status": "queued"})
        return self.get(job_id)

    def get(self, job_id: str) -> BatchJob:
        with self._db() as db:
            row = db.execute("SELECT * FROM batch_jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                ids = [r[0] for r in db.execute("SELECT id FROM batch_jobs ORDER BY created_at DESC LIMIT 200")]
                raise UserError(unknown("batch job", job_id, ids))
        return _job(row)

    def list(self, statuses: tuple[str, ...] | None = None) -> list[BatchJob]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM batch_jobs ORDER BY created_at, id").fetchall()
        return [j for j in map(_job, rows) if statuses is None or j.status in statuses]

    def set_status(self, job_id: str, status: Status, message: str | None = None, *, error: str | None = None,
                   expect: tuple[str, ...] | None = None, data: dict[str, Any] | None = None) -> bool:
        """Move a job to `status` (only from one of `expect` when given) with an event; False when another
        process moved it first."""
        now = time.time()
        with self._db(immediate=True) as db:
            current = db.execute("SELECT status FROM batch_jobs WHERE id = ?", (job_id,)).fetchone()
            if current is None or (expect is not None and current[0] not in expect):
                return False
            sets: dict[str, Any] = {"status": status}
            if status in FINAL:
                sets.update(finished_at=now, pid=None)
            if status == "queued":
                sets.update(finished_at=None, error=None, stop_requested=0, pid=None, queued_at=now)
            if error is not None:
                sets["error"] = error
            _update(db, job_id, sets)
            _event(db, job_id, "status", message or status,
                   {"status": status, **({"error": error} if error else {}), **(data or {})})
        return True

    def update(self, job_id: str, **fields: Any) -> None:
        unknown_fields = set(fields) - set(_FIELDS)
        if unknown_fields:
            raise ValueError(f"not a batch job field: {sorted(unknown_fields)}")
        with self._db(immediate=True) as db:
            _update(db, job_id, fields)

    def start_attempt(self, job_id: str, pid: int) -> BatchJob:
        """The worker's first write: its pid, the attempt count and the start time, in one transaction (a stop
        asked for before it started stays asked for)."""
        with self._db(immediate=True) as db:
            db.execute("UPDATE batch_jobs SET pid = ?, attempt = attempt + 1, started_at = coalesce(started_at, ?) "
                       "WHERE id = ?", (pid, time.time(), job_id))
        return self.get(job_id)

    def add_event(self, job_id: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self._db() as db:
            _event(db, job_id, kind, message, data)

    def events(self, job_id: str, after: int = 0) -> list[Event]:
        self.get(job_id)
        with self._db() as db:
            rows = db.execute("SELECT * FROM batch_events WHERE job_id = ? AND seq > ? ORDER BY seq",
                              (job_id, after)).fetchall()
        return [Event(r["job_id"], r["seq"], r["at"], r["kind"], r["message"],
                      json.loads(r["data"]) if r["data"] else None) for r in rows]


def _update(db: sqlite3.Connection, job_id: str, fields: dict[str, Any]) -> None:
    if fields:
        cols = ", ".join(f"{k} = ?" for k in fields)  # keys come from this module, never from a user
        db.execute(f"UPDATE batch_jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))


def _event(db: sqlite3.Connection, job_id: str, kind: str, message: str, data: dict[str, Any] | None) -> None:
    db.execute("INSERT INTO batch_events (job_id, at, kind, message, data) VALUES (?, ?, ?, ?, ?)",
               (job_id, time.time(), kind, message, json.dumps(data) if data is not None else None))


def _job(r: sqlite3.Row) -> BatchJob:
    return BatchJob(id=r["id"], status=r["status"], plan=json.loads(r["plan"]), created_at=r["created_at"],
                    started_at=r["started_at"], finished_at=r["finished_at"], pid=r["pid"], attempt=r["attempt"],
                    error=r["error"], rows_total=r["rows_total"], rows_done=r["rows_done"],
                    output_table=r["output_table"], source_hash=r["source_hash"],
                    stop_requested=bool(r["stop_requested"]), queued_at=r["queued_at"])

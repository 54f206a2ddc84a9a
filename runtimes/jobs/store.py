"""Every job of every kind (fine-tune, batch, …) in one `jobs` table of the workspace's `state.sqlite`, with its
events and metrics; the statuses and the progress shape are defined here, once.

Every write is one short transaction, so workers, the CLI and the app share the file from several processes. It
never starts or signals a process (lifecycle.py does) and knows nothing of what a kind computes.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from catalog.suggestions import unknown
from core.errors import UserError
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace

Status = Literal["queued", "validating", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("queued", "validating", "running", "succeeded", "failed", "cancelled")
ACTIVE: tuple[str, ...] = ("validating", "running")
FINAL: tuple[str, ...] = ("succeeded", "failed", "cancelled")
RESUMABLE: tuple[str, ...] = ("cancelled", "failed")
# Event kinds every job writes; a kind may add its own (checkpoint, evaluation, generated, …).
STATUS_EVENT, PROGRESS_EVENT, ERROR_EVENT, CANCEL_EVENT = "status", "progress", "error", "cancel"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, spec TEXT NOT NULL, plan TEXT,
    pid INTEGER, attempt INTEGER NOT NULL DEFAULT 0, progress TEXT NOT NULL DEFAULT '{}',
    record TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL, queued_at REAL, started_at REAL,
    finished_at REAL, error TEXT, stop_requested INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT);
CREATE TABLE IF NOT EXISTS job_metrics (
    job_id TEXT NOT NULL, attempt INTEGER NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL,
    value REAL NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id, seq);
CREATE INDEX IF NOT EXISTS job_metrics_job ON job_metrics (job_id, name, step);
"""
_COLUMNS = ("pid", "attempt", "error", "stop_requested", "started_at")


@dataclass(frozen=True)
class Progress:
    """One shape for every kind: `done` of `total` `unit`s (steps of training, rows of a batch)."""
    done: int = 0
    total: int | None = None
    unit: str = "steps"

    def describe(self) -> str:
        return f"{self.done:,}" + (f" of {self.total:,}" if self.total else "") + f" {self.unit}"


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    spec: dict[str, Any]  # what the user asked, as the kind's spec model dumps it
    plan: dict[str, Any] | None  # the approved plan, fixed at submit: what the worker runs
    pid: int | None
    attempt: int
    progress: Progress
    record: dict[str, Any]  # what the kind's work records as it goes (checkpoint, lineage, output table, …)
    created_at: float
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    error: str | None
    stop_requested: bool

    # The kinds' record under plain names, as their callers read them.
    @property
    def step(self) -> int:
        return self.progress.done

    @property
    def rows_done(self) -> int:
        return self.progress.done

    @property
    def rows_total(self) -> int:
        return self.progress.total or 0

    @property
    def checkpoint(self) -> str | None:
        return self.record.get("checkpoint")

    @property
    def config(self) -> dict[str, Any] | None:
        return (self.plan or {}).get("settings")

    @property
    def lineage(self) -> dict[str, Any] | None:
        return self.record.get("lineage")

    @property
    def mlflow_run_id(self) -> str | None:
        return self.record.get("mlflow_run_id")

    @property
    def model_version(self) -> str | None:
        return self.record.get("model_version")

    @property
    def output_table(self) -> str | None:
        return self.record.get("output_table")

    def to_json(self) -> dict[str, Any]:
        """The job's fields with its record's entries beside them (checkpoint, output_table, …)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "record"}
        d["progress"] = {"done": self.progress.done, "total": self.progress.total, "unit": self.progress.unit}
        return {**d, **self.record}


@dataclass(frozen=True)
class Event:
    job_id: str
    seq: int
    at: float
    kind: str
    message: str
    data: dict[str, Any] | None = field(default=None)


class JobStore:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        ensure_schema(ws.state_path, _SCHEMA)

    def _db(self, immediate: bool = False) -> Any:
        return transaction(self.ws.state_path, immediate)

    # jobs
    def create(self, kind: str, spec: dict[str, Any], plan: dict[str, Any] | None, progress: Progress) -> Job:
        job_id = f"{'job' if kind == 'finetune' else kind}-{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
        now = time.time()
        with self._db() as db:
            db.execute("INSERT INTO jobs (id, kind, status, spec, plan, progress, created_at, queued_at) "
                       "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
                       (job_id, kind, json.dumps(spec), json.dumps(plan) if plan is not None else None,
                        _progress_json(progress), now, now))
            _event(db, job_id, STATUS_EVENT, "queued", {"status": "queued"})
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                ids = [r[0] for r in db.execute("SELECT id FROM jobs ORDER BY created_at DESC LIMIT 200")]
                raise UserError(unknown("job", job_id, ids))
        return _job(row)

    def list(self, statuses: tuple[str, ...] | None = None, kind: str | None = None) -> list[Job]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY created_at, id").fetchall()
        return [j for j in map(_job, rows) if (statuses is None or j.status in statuses)
                and (kind is None or j.kind == kind)]

    def set_status(self, job_id: str, status: Status, message: str | None = None, *, error: str | None = None,
                   expect: tuple[str, ...] | None = None, data: dict[str, Any] | None = None) -> bool:
        """Move a job to `status` (only from one of `expect` when given), with an event; False when the job was
        not in an expected status (another process moved it first)."""
        now = time.time()
        with self._db(immediate=True) as db:
            current = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
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
            _event(db, job_id, STATUS_EVENT, message or status,
                   {"status": status, **({"error": error} if error else {}), **(data or {})})
        return True

    def update(self, job_id: str, **fields: Any) -> None:
        """Set the job's own columns (pid, attempt, error, stop_requested, started_at)."""
        if unknown_fields := set(fields) - set(_COLUMNS):
            raise ValueError(f"not a job column: {sorted(unknown_fields)}")
        with self._db(immediate=True) as db:
            _update(db, job_id, fields)

    def record(self, job_id: str, **values: Any) -> None:
        """Merge `values` into what the job's work records (checkpoint, lineage, output table, …)."""
        with self._db(immediate=True) as db:
            row = db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
            _update(db, job_id, {"record": json.dumps({**json.loads(row[0]), **values})})

    def set_progress(self, job_id: str, done: int, total: int | None = None, *, event: str | None = None) -> None:
        """Where the job stands; with `event`, also a progress event of the one shape every kind writes."""
        with self._db(immediate=True) as db:
            row = db.execute("SELECT progress FROM jobs WHERE id = ?", (job_id,)).fetchone()
            old = json.loads(row[0])
            new = {**old, "done": done, **({"total": total} if total is not None else {})}
            _update(db, job_id, {"progress": json.dumps(new)})
            if event is not None:
                _event(db, job_id, PROGRESS_EVENT, event, new)

    def start_attempt(self, job_id: str, pid: int) -> Job:
        """The worker's first write: its pid, the next attempt and the start time, in one transaction (a stop asked
        for before it started stays asked for)."""
        with self._db(immediate=True) as db:
            db.execute("UPDATE jobs SET pid = ?, attempt = attempt + 1, started_at = ? WHERE id = ?",
                       (pid, time.time(), job_id))
        return self.get(job_id)

    def claim(self, job_id: str, slots: int | None = None) -> bool:
        """Take a queued job into `validating` (its worker is about to start), in one transaction with the count of
        its kind's active jobs, so two processes never fill one slot twice; False when it is not queued or `slots`
        jobs of its kind are active."""
        with self._db(immediate=True) as db:
            if slots is not None and db.execute(
                    f"SELECT count(*) FROM jobs WHERE status IN {ACTIVE} AND kind = "
                    "(SELECT kind FROM jobs WHERE id = ?)", (job_id,)).fetchone()[0] >= slots:
                return False
            if db.execute("UPDATE jobs SET status = 'validating', started_at = ?, stop_requested = 0 "
                          "WHERE id = ? AND status = 'queued'", (time.time(), job_id)).rowcount == 0:
                return False
            _event(db, job_id, STATUS_EVENT, "validating", {"status": "validating"})
        return True

    def delete(self, job_id: str) -> None:
        """Remove a job with its events and metrics (the lifecycle refuses an active one first)."""
        self.get(job_id)
        with self._db(immediate=True) as db:
            db.execute("DELETE FROM job_metrics WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM job_events WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    # events and metrics
    def add_event(self, job_id: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self._db() as db:
            _event(db, job_id, kind, message, data)

    def events(self, job_id: str, after: int = 0) -> list[Event]:
        self.get(job_id)
        with self._db() as db:
            rows = db.execute("SELECT * FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq",
                              (job_id, after)).fetchall()
        return [Event(r["job_id"], r["seq"], r["at"], r["kind"], r["message"],
                      json.loads(r["data"]) if r["data"] else None) for r in rows]

    def last_event_seq(self, job_id: str) -> int:
        with self._db() as db:
            return int(db.execute("SELECT coalesce(max(seq), 0) FROM job_events WHERE job_id = ?",
                                  (job_id,)).fetchone()[0])

    def add_metrics(self, job_id: str, attempt: int, step: int, values: dict[str, float]) -> None:
        now = time.time()
        with self._db() as db:
            db.executemany("INSERT INTO job_metrics VALUES (?, ?, ?, ?, ?, ?)",
                           [(job_id, attempt, step, k, float(v), now) for k, v in values.items()])

    def metrics(self, job_id: str, name: str | None = None) -> list[tuple[int, int, str, float]]:
        """(attempt, step, name, value) rows in the order they were written."""
        with self._db() as db:
            q = "SELECT attempt, step, name, value FROM job_metrics WHERE job_id = ?"
            args: tuple[Any, ...] = (job_id,)
            if name is not None:
                q, args = q + " AND name = ?", (job_id, name)
            return [tuple(r) for r in db.execute(q + " ORDER BY rowid", args).fetchall()]

    def metric_times(self, job_id: str, name: str) -> list[tuple[int, float]]:
        """(step, UNIX time it was written) of one metric, in the order written: a job's pace in steps."""
        with self._db() as db:
            return [tuple(r) for r in db.execute("SELECT step, at FROM job_metrics WHERE job_id = ? AND name = ? "
                                                 "ORDER BY rowid", (job_id, name)).fetchall()]

    def latest_metrics(self, job_id: str) -> dict[str, tuple[int, float]]:
        """Each metric's value at its last step (a resumed job's rerun steps override the first attempt's)."""
        out: dict[str, tuple[int, float]] = {}
        for _, step, name, value in self.metrics(job_id):
            out[name] = (step, value)
        return out


def _update(db: sqlite3.Connection, job_id: str, fields: dict[str, Any]) -> None:
    if fields:
        cols = ", ".join(f"{k} = ?" for k in fields)  # keys come from this module, never from a user
        db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))


def _event(db: sqlite3.Connection, job_id: str, kind: str, message: str, data: dict[str, Any] | None) -> None:
    db.execute("INSERT INTO job_events (job_id, at, kind, message, data) VALUES (?, ?, ?, ?, ?)",
               (job_id, time.time(), kind, message, json.dumps(data) if data is not None else None))


def _progress_json(p: Progress) -> str:
    return json.dumps({"done": p.done, "total": p.total, "unit": p.unit})


def _job(r: sqlite3.Row) -> Job:
    p = json.loads(r["progress"])
    return Job(id=r["id"], kind=r["kind"], status=r["status"], spec=json.loads(r["spec"]),
               plan=json.loads(r["plan"]) if r["plan"] else None, pid=r["pid"], attempt=r["attempt"],
               progress=Progress(int(p.get("done") or 0), p.get("total"), p.get("unit", "steps")),
               record=json.loads(r["record"]), created_at=r["created_at"], queued_at=r["queued_at"],
               started_at=r["started_at"], finished_at=r["finished_at"], error=r["error"],
               stop_requested=bool(r["stop_requested"]))

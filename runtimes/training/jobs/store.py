"""The jobs, their events and their metrics in the workspace's `state.sqlite`.

Every write is one short transaction, so that the worker, the launcher and the CLI can share the file from
several processes at once. It never starts or signals processes; that is the launcher's concern.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from catalog.data_source import SourceFields
from core.errors import UserError, validate_input
from catalog.suggestions import unknown
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace
from runtimes.training.recipes import Technique

Status = Literal["queued", "validating", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("queued", "validating", "running", "succeeded", "failed", "cancelled")
ACTIVE: tuple[str, ...] = ("validating", "running")
FINAL: tuple[str, ...] = ("succeeded", "failed", "cancelled")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS training_jobs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL,
    started_at REAL, finished_at REAL, pid INTEGER, attempt INTEGER NOT NULL DEFAULT 0,
    error TEXT, checkpoint TEXT, step INTEGER NOT NULL DEFAULT 0, config TEXT, lineage TEXT,
    mlflow_run_id TEXT, model_version TEXT, stop_requested INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS training_events (
    job_id TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT);
CREATE TABLE IF NOT EXISTS training_metrics (
    job_id TEXT NOT NULL, attempt INTEGER NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL,
    value REAL NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS training_events_job ON training_events (job_id, seq);
CREATE INDEX IF NOT EXISTS training_metrics_job ON training_metrics (job_id, name, step);
"""


class JobSpec(SourceFields):
    """What a user asked to train: base model, data (a catalog table or one read query), technique and
    overrides of any setting; everything else is chosen for them."""
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="a model folder, a workspace model (e.g. tiny-qwen3) or a hub id")
    technique: Technique = "sft"
    settings: dict[str, Any] = Field(default_factory=dict, description="overrides: key → value (`--set key=value`)")
    name: str | None = Field(None, description="the registered model's name; default `<model>-<technique>`")
    eval_fraction: float = Field(0.1, ge=0, lt=1)
    mapping: dict[str, str] | None = Field(None, description="role → column, overriding the inferred mapping "
                                                             "(`--map prompt=question,completion=answer`)")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        # The name becomes a folder and a registry key: a path or a dot in it could write outside the runs folder.
        if name is not None and not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"{name!r} is not a model name: use 1 to 64 letters, digits, `-` or `_`, starting with "
                             f"a letter or digit (pattern {NAME_PATTERN.pattern})")
        return name

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "JobSpec":
        return validate_input(cls, data, "fine-tuning job")


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    spec: JobSpec
    created_at: float
    started_at: float | None
    finished_at: float | None
    pid: int | None
    attempt: int
    error: str | None
    checkpoint: str | None
    step: int
    config: dict[str, Any] | None
    lineage: dict[str, Any] | None
    mlflow_run_id: str | None
    model_version: str | None
    stop_requested: bool

    def to_json(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["spec"] = self.spec.model_dump(exclude_none=True)
        return d


@dataclass(frozen=True)
class Event:
    job_id: str
    seq: int
    at: float
    kind: str
    message: str
    data: dict[str, Any] | None


class JobStore:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        ensure_schema(ws.state_path, _SCHEMA)

    def _db(self, immediate: bool = False) -> Any:
        return transaction(self.ws.state_path, immediate)

    # jobs
    def create(self, spec: JobSpec) -> Job:
        job_id = f"job-{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
        now = time.time()
        with self._db() as db:
            db.execute("INSERT INTO training_jobs (id, status, spec, created_at) VALUES (?, 'queued', ?, ?)",
                       (job_id, spec.model_dump_json(), now))
            _event(db, job_id, "status", "queued", {"status": "queued"})
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self._db() as db:
            row = db.execute("SELECT * FROM training_jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                ids = [r[0] for r in db.execute("SELECT id FROM training_jobs ORDER BY created_at DESC LIMIT 200")]
                raise UserError(unknown("job", job_id, ids))
        return _job(row)

    def list(self, statuses: tuple[str, ...] | None = None) -> list[Job]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM training_jobs ORDER BY created_at, id").fetchall()
        jobs = [_job(r) for r in rows]
        return [j for j in jobs if statuses is None or j.status in statuses]

    def set_status(self, job_id: str, status: Status, message: str | None = None, *, error: str | None = None,
                   expect: tuple[str, ...] | None = None) -> bool:
        """Move a job to `status` (only from one of `expect` when given); records an event. False when the
        job was not in an expected status (another process moved it first)."""
        now = time.time()
        with self._db(immediate=True) as db:
            current = db.execute("SELECT status FROM training_jobs WHERE id = ?", (job_id,)).fetchone()
            if current is None or (expect is not None and current[0] not in expect):
                return False
            sets = {"status": status}
            if status in FINAL:
                sets.update(finished_at=now, pid=None)
            if status == "queued":
                sets.update(finished_at=None, error=None, stop_requested=0, pid=None)
            if status == "validating":
                sets.update(started_at=now, stop_requested=0)
            if error is not None:
                sets["error"] = error
            _update(db, job_id, sets)
            _event(db, job_id, "status", message or status, {"status": status, **({"error": error} if error else {})})
        return True

    def update(self, job_id: str, **fields: Any) -> None:
        """Set columns of a job (pid, checkpoint, step, config, lineage, mlflow_run_id, model_version, attempt)."""
        with self._db(immediate=True) as db:
            _update(db, job_id, {k: json.dumps(v) if k in ("config", "lineage") and v is not None else v
                                 for k, v in fields.items()})

    def claim_next(self, slots: int) -> Job | None:
        """Atomically take the oldest queued job into `validating` when fewer than `slots` jobs are active."""
        with self._db(immediate=True) as db:
            active = db.execute(f"SELECT count(*) FROM training_jobs WHERE status IN {ACTIVE}").fetchone()[0]
            if active >= slots:
                return None
            row = db.execute("SELECT id FROM training_jobs WHERE status = 'queued' "
                             "ORDER BY created_at, id LIMIT 1").fetchone()
            if row is None:
                return None
            _update(db, row[0], {"status": "validating", "started_at": time.time(), "stop_requested": 0,
                                 "attempt": db.execute("SELECT attempt FROM training_jobs WHERE id = ?",
                                                       (row[0],)).fetchone()[0] + 1})
            _event(db, row[0], "status", "validating", {"status": "validating"})
        return self.get(row[0])

    def delete(self, job_id: str) -> None:
        """Remove a job with its events and metrics (the launcher refuses an active one first)."""
        self.get(job_id)
        with self._db(immediate=True) as db:
            for table in ("training_metrics", "training_events", "training_jobs"):
                db.execute(f"DELETE FROM {table} WHERE {'id' if table == 'training_jobs' else 'job_id'} = ?",
                           (job_id,))

    # events and metrics
    def add_event(self, job_id: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self._db() as db:
            _event(db, job_id, kind, message, data)

    def events(self, job_id: str, after: int = 0) -> list[Event]:
        self.get(job_id)
        with self._db() as db:
            rows = db.execute("SELECT * FROM training_events WHERE job_id = ? AND seq > ? ORDER BY seq",
                              (job_id, after)).fetchall()
        return [Event(r["job_id"], r["seq"], r["at"], r["kind"], r["message"],
                      json.loads(r["data"]) if r["data"] else None) for r in rows]

    def add_metrics(self, job_id: str, attempt: int, step: int, values: dict[str, float]) -> None:
        now = time.time()
        with self._db() as db:
            db.executemany("INSERT INTO training_metrics VALUES (?, ?, ?, ?, ?, ?)",
                           [(job_id, attempt, step, k, float(v), now) for k, v in values.items()])
            db.execute("UPDATE training_jobs SET step = max(step, ?) WHERE id = ?", (step, job_id))

    def metrics(self, job_id: str, name: str | None = None) -> list[tuple[int, int, str, float]]:
        """(attempt, step, name, value) rows in the order they were written."""
        with self._db() as db:
            q = "SELECT attempt, step, name, value FROM training_metrics WHERE job_id = ?"
            args: tuple[Any, ...] = (job_id,)
            if name is not None:
                q, args = q + " AND name = ?", (job_id, name)
            return [tuple(r) for r in db.execute(q + " ORDER BY rowid", args).fetchall()]

    def latest_metrics(self, job_id: str) -> dict[str, tuple[int, float]]:
        """Each metric's value at its last step (a resumed job's rerun steps override the first attempt's)."""
        out: dict[str, tuple[int, float]] = {}
        for _, step, name, value in self.metrics(job_id):
            out[name] = (step, value)
        return out


def _update(db: sqlite3.Connection, job_id: str, fields: dict[str, Any]) -> None:
    if fields:
        cols = ", ".join(f"{k} = ?" for k in fields)  # keys come from this module, never from a user
        db.execute(f"UPDATE training_jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))


def _event(db: sqlite3.Connection, job_id: str, kind: str, message: str, data: dict[str, Any] | None) -> None:
    db.execute("INSERT INTO training_events (job_id, at, kind, message, data) VALUES (?, ?, ?, ?, ?)",
               (job_id, time.time(), kind, message, json.dumps(data) if data is not None else None))


def _job(r: sqlite3.Row) -> Job:
    return Job(id=r["id"], status=r["status"], spec=JobSpec.model_validate_json(r["spec"]), created_at=r["created_at"],
               started_at=r["started_at"], finished_at=r["finished_at"], pid=r["pid"], attempt=r["attempt"],
               error=r["error"], checkpoint=r["checkpoint"], step=r["step"],
               config=json.loads(r["config"]) if r["config"] else None,
               lineage=json.loads(r["lineage"]) if r["lineage"] else None, mlflow_run_id=r["mlflow_run_id"],
               model_version=r["model_version"], stop_requested=bool(r["stop_requested"]))

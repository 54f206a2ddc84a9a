"""The asynchronous inference queue: a SQLite file in the workspace (`runs/async/queue.sqlite`, WAL) that callers
submit requests to (large payloads by file reference) and worker processes claim under a lease, answer and complete.

A request is answered exactly once by construction: the answer is stored and the request marked done in one
transaction by the holder of its current lease only, and triggers make a second, changed or deleted answer, or any
change to a finished request, impossible. It never runs a model (worker.py does).

Every call is one transaction of `core.state_db` (the queue keeps no connection open), and a request's lifecycle
(queued, running under a lease, done / failed / cancelled) goes through those helpers, so that an async request
can become a kind of job.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog.suggestions import unknown
from core.errors import UserError, validate_input
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace
from runtimes.serving.engines.transformers_engine import ChatMessage, Sampling

INLINE_LIMIT_BYTES = 64 * 1024  # larger payloads go by file reference
FILE_LIMIT_BYTES = 64 * 1024 * 1024
MAX_ATTEMPTS = 5  # a request whose worker died this many times while answering it fails rather than kill more
FINAL = ("done", "failed", "cancelled")
_BUSY_S = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, model TEXT NOT NULL, payload TEXT, payload_path TEXT,
    payload_bytes INTEGER NOT NULL, webhook TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    submitted_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, claimed_by TEXT, lease_token TEXT,
    lease_expires REAL, started_at REAL, finished_at REAL, error TEXT, error_status INTEGER,
    captured INTEGER NOT NULL DEFAULT 0,
    CHECK ((payload IS NULL) <> (payload_path IS NULL)));
CREATE INDEX IF NOT EXISTS requests_queue ON requests (status, model, submitted_at);
CREATE INDEX IF NOT EXISTS requests_leases ON requests (status, lease_expires);
CREATE INDEX IF NOT EXISTS requests_capture ON requests (captured, status, claimed_by);
CREATE TABLE IF NOT EXISTS results (
    request_id TEXT PRIMARY KEY REFERENCES requests (id), text TEXT NOT NULL, finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, latency_ms REAL NOT NULL,
    completed_by TEXT NOT NULL, completed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (
    request_id TEXT PRIMARY KEY REFERENCES requests (id), url TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')), attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, delivered_at REAL, last_status INTEGER, last_error TEXT);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (status, next_at);
CREATE TABLE IF NOT EXISTS deliveries (
    request_id TEXT NOT NULL, attempt INTEGER NOT NULL, at REAL NOT NULL, status_code INTEGER, error TEXT);
CREATE TABLE IF NOT EXISTS workers (
    worker TEXT PRIMARY KEY, name TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, models TEXT NOT NULL,
    started_at REAL NOT NULL, seen_at REAL NOT NULL, completed INTEGER NOT NULL DEFAULT 0,
    stopped_at REAL);

-- The exactly-once rules, kept by the database whatever a worker does.
CREATE TRIGGER IF NOT EXISTS results_written_once BEFORE UPDATE ON results
BEGIN SELECT RAISE(ABORT, 'an async result is written once and never changed'); END;
CREATE TRIGGER IF NOT EXISTS results_kept BEFORE DELETE ON results
BEGIN SELECT RAISE(ABORT, 'an async result is never deleted'); END;
CREATE TRIGGER IF NOT EXISTS results_only_while_running BEFORE INSERT ON results
WHEN (SELECT status FROM requests WHERE id = NEW.request_id) IS NOT 'running'
BEGIN SELECT RAISE(ABORT, 'a result is stored only for a request being answered'); END;
CREATE TRIGGER IF NOT EXISTS requests_done_has_result BEFORE UPDATE OF status ON requests
WHEN NEW.status = 'done' AND NOT EXISTS (SELECT 1 FROM results WHERE request_id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'a request is done only with its result'); END;
CREATE TRIGGER IF NOT EXISTS requests_final BEFORE UPDATE OF status ON requests
WHEN OLD.status IN ('done', 'failed', 'cancelled') AND NEW.status IS NOT OLD.status
BEGIN SELECT RAISE(ABORT, 'a finished request never changes status'); END;
"""


class AsyncRequest(BaseModel):
    """One request's body, as the OpenAI API takes it: `messages` (chat) or `prompt` (completion), and decoding."""
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="which of an endpoint's models answers (when it serves several)")
    messages: list[ChatMessage] | None = None
    prompt: str | None = None
    max_tokens: int = Field(64, ge=1, le=8192)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list, max_length=4)
    seed: int | None = None
    group: str | None = Field(None, description="a group value for per-group monitoring")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_input(self) -> "AsyncRequest":
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("send exactly one of `messages` (chat) and `prompt` (completion)")
        if self.messages is not None and not self.messages:
            raise ValueError("`messages` is empty: send at least one message")
        return self

    def sampling(self) -> Sampling:
        return Sampling(max_new_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                        stop=self.stop, seed=self.seed)


@dataclass(frozen=True)
class Claim:
    id: str
    token: str
    endpoint: str
    model: str
    request: AsyncRequest
    submitted_at: float
    attempts: int


@dataclass(frozen=True)
class RequestStatus:
    id: str
    endpoint: str
    model: str
    status: str
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    error: str | None
    payload_path: str | None
    webhook: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AsyncResult:
    id: str
    model: str
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    completed_at: float
    completed_by: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def queue_dir(ws: Workspace) -> Path:
    return ws.root / "runs" / "async"


class AsyncQueue:
    """The queue of a workspace; each call is one transaction, so one instance serves any thread."""

    def __init__(self, ws: Workspace) -> None:
        ws.require()
        self.ws = ws
        self.path = queue_dir(ws) / "queue.sqlite"
        ensure_schema(self.path, _SCHEMA, timeout_s=_BUSY_S)

    def _read(self) -> Any:
        return transaction(self.path, timeout_s=_BUSY_S)

    def _write(self) -> Any:
        # Immediate: the write lock first, so read-then-write (a claim) is atomic across processes. Durable (the
        # default): a committed answer survives a power cut, so no client sees an answer that is later redone.
        return transaction(self.path, immediate=True, timeout_s=_BUSY_S)

    # ---- callers ------------------------------------------------------------------------------------
    def submit_many(self, endpoint: str, model: str, requests: Sequence[tuple[AsyncRequest, Path | None]],
                    webhook: str | None = None) -> list[str]:
        """Queue requests (each inline, or with a payload file to copy in) in one transaction; their ids."""
        now = time.time()
        rows, copies = [], []
        for request, source_file in requests:
            rid = f"async-{uuid.uuid4().hex}"
            if source_file is None:
                body = request.model_dump_json(exclude_none=True)
                rows.append((rid, endpoint, model, body, None, len(body.encode()), webhook, now))
            else:
                target = queue_dir(self.ws) / "payloads" / f"{rid}.json"
                copies.append((source_file, target))
                rows.append((rid, endpoint, model, None, str(target), source_file.stat().st_size, webhook, now))
        for source_file, target in copies:  # files first: a row never points at a file that is not there
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_file, target)
        try:
            with self._write() as db:
                db.executemany("INSERT INTO requests (id, endpoint, model, payload, payload_path, payload_bytes, "
                               "webhook, status, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?)", rows)
        except BaseException:
            for _, target in copies:
                target.unlink(missing_ok=True)
            raise
        return [r[0] for r in rows]

    def status(self, request_id: str) -> RequestStatus:
        with self._read() as db:
            row = self._row(db, request_id)
            hook = db.execute("SELECT url, status, attempts, delivered_at, last_status, last_error FROM webhooks "
                              "WHERE request_id = ?", (request_id,)).fetchone()
        return RequestStatus(id=row["id"], endpoint=row["endpoint"], model=row["model"], status=row["status"],
                             submitted_at=row["submitted_at"], started_at=row["started_at"],
                             finished_at=row["finished_at"], attempts=row["attempts"], error=row["error"],
                             payload_path=row["payload_path"], webhook=dict(hook) if hook else None)

    def result(self, request_id: str) -> AsyncResult:
        with self._read() as db:
            row = self._row(db, request_id)
            r = db.execute("SELECT * FROM results WHERE request_id = ?", (request_id,)).fetchone()
        if row["status"] != "done":
            said = {"queued": "is queued: no worker has taken it yet",
                    "running": f"is being answered (attempt {row['attempts']})",
                    "failed": f"failed: {row['error']}", "cancelled": "was cancelled"}[row["status"]]
            hint = "; ask again later or wait for it" if row["status"] in ("queued", "running") else ""
            raise UserError(f"request {request_id} has no result: it {said}{hint}")
        return AsyncResult(id=request_id, model=row["model"], text=r["text"], finish_reason=r["finish_reason"],
                           prompt_tokens=r["prompt_tokens"], completion_tokens=r["completion_tokens"],
                           latency_ms=r["latency_ms"], completed_at=r["completed_at"], completed_by=r["completed_by"])

    def cancel(self, request_id: str) -> RequestStatus:
        """A queued or running request ends `cancelled`; a worker answering it loses its lease, and its answer."""
        with self._write() as db:
            row = db.execute("SELECT status FROM requests WHERE id = ?", (request_id,)).fetchone()
            if row is None:
                raise UserError(self._unknown(db, request_id))
            if row["status"] in FINAL:
                raise UserError(f"request {request_id} is already {row['status']}; nothing to cancel")
            db.execute("UPDATE requests SET status = 'cancelled', finished_at = ?, lease_token = NULL, "
                       "lease_expires = NULL WHERE id = ?", (time.time(), request_id))
        return self.status(request_id)

    def counts(self) -> dict[str, dict[str, int]]:
        """model → status → number of requests."""
        out: dict[str, dict[str, int]] = {}
        with self._read() as db:
            for model, status, n in db.execute("SELECT model, status, count(*) FROM requests GROUP BY 1, 2"):
                out.setdefault(model, {})[status] = n
        return out

    def workers(self) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = [dict(r) for r in db.execute("SELECT * FROM workers ORDER BY started_at")]
        for r in rows:
            r["models"] = json.loads(r["models"])
            r["alive"] = r["stopped_at"] is None and _process_alive(r["worker"])
        return rows

    # ---- workers ------------------------------------------------------------------------------------
    def claim(self, models: Sequence[str], worker: str, *, limit: int, lease_s: float) -> list[Claim]:
        """Take up to `limit` requests for `models` (expired leases first, then the oldest queued) under one lease."""
        now = time.time()
        token = uuid.uuid4().hex
        marks = ",".join("?" * len(models))
        claims: list[Claim] = []
        with self._write() as db:
            rows = db.execute(f"SELECT * FROM requests WHERE status = 'running' AND lease_expires < ? AND model IN "
                              f"({marks}) ORDER BY lease_expires LIMIT ?", (now, *models, limit)).fetchall()
            rows += db.execute(f"SELECT * FROM requests WHERE status = 'queued' AND model IN ({marks}) "
                               "ORDER BY submitted_at, rowid LIMIT ?", (*models, limit)).fetchall()
            for row in rows:
                if len(claims) == limit:
                    break
                if row["attempts"] >= MAX_ATTEMPTS:
                    db.execute("UPDATE requests SET status = 'failed', finished_at = ?, lease_token = NULL, "
                               "error = ?, error_status = 500 WHERE id = ?",
                               (now, f"its worker stopped {row['attempts']} times while answering it", row["id"]))
                    self._queue_webhook(db, row["id"], now)
                    continue
                try:
                    request = self._payload(row)
                except (OSError, UserError) as e:  # a payload file removed by hand: that request alone fails
                    db.execute("UPDATE requests SET status = 'failed', finished_at = ?, lease_token = NULL, "
                               "error = ?, error_status = 400 WHERE id = ?", (now, str(e), row["id"]))
                    self._queue_webhook(db, row["id"], now)
                    continue
                db.execute("UPDATE requests SET status = 'running', claimed_by = ?, lease_token = ?, "
                           "lease_expires = ?, attempts = attempts + 1, started_at = coalesce(started_at, ?) "
                           "WHERE id = ?", (worker, token, now + lease_s, now, row["id"]))
                claims.append(Claim(id=row["id"], token=token, endpoint=row["endpoint"], model=row["model"],
                                    request=request, submitted_at=row["submitted_at"], attempts=row["attempts"] + 1))
        return claims

    def complete(self, claim: Claim, worker: str, *, text: str, finish_reason: str, prompt_tokens: int,
                 completion_tokens: int, latency_ms: float) -> bool:
        """Store the answer and mark the request done, in one transaction; False (and nothing stored) when the
        lease was lost: the lease expired and another worker took it, or the request was cancelled."""
        now = time.time()
        try:
            with self._write() as db:
                if not self._holds(db, claim):
                    raise _LeaseLost
                db.execute("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (claim.id, text, finish_reason, prompt_tokens, completion_tokens, latency_ms, worker, now))
                db.execute("UPDATE requests SET status = 'done', finished_at = ?, lease_token = NULL, "
                           "lease_expires = NULL WHERE id = ? AND lease_token = ?", (now, claim.id, claim.token))
                self._queue_webhook(db, claim.id, now)
                db.execute("UPDATE workers SET completed = completed + 1, seen_at = ? WHERE worker = ?", (now, worker))
        except _LeaseLost:
            return False
        return True

    def fail(self, claim: Claim, error: str, status: int = 400) -> bool:
        """End a request `failed` with the reason (bad input the worker found, or a model error)."""
        now = time.time()
        try:
            with self._write() as db:
                if not self._holds(db, claim):
                    raise _LeaseLost
                db.execute("UPDATE requests SET status = 'failed', finished_at = ?, lease_token = NULL, "
                           "lease_expires = NULL, error = ?, error_status = ? WHERE id = ?",
                           (now, error, status, claim.id))
                self._queue_webhook(db, claim.id, now)
        except _LeaseLost:
            return False
        return True

    def renew(self, token: str, lease_s: float) -> int:
        """Extend a claim's lease while its requests are still being answered; the number still held."""
        with self._write() as db:
            return db.execute("UPDATE requests SET lease_expires = ? WHERE lease_token = ? AND status = 'running'",
                              (time.time() + lease_s, token)).rowcount

    def release(self, token: str, ids: Sequence[str]) -> None:
        """Give claimed requests back to the queue unanswered (a worker stopping gracefully)."""
        if not ids:
            return
        with self._write() as db:
            db.executemany("UPDATE requests SET status = 'queued', claimed_by = NULL, lease_token = NULL, "
                           "lease_expires = NULL, attempts = attempts - 1 WHERE id = ? AND lease_token = ? AND "
                           "status = 'running'", [(i, token) for i in ids])

    def reclaim_dead(self) -> int:
        """Expire at once the leases held by workers of this machine whose process is gone (no waiting for the
        lease to run out after a restart); returns how many requests went back to the queue."""
        with self._read() as db:
            held = [r[0] for r in db.execute("SELECT DISTINCT claimed_by FROM requests WHERE status = 'running'")]
        dead = [w for w in held if w and _on_this_host(w) and not _process_alive(w)]
        if not dead:
            return 0
        with self._write() as db:
            return sum(db.execute("UPDATE requests SET lease_expires = 0 WHERE claimed_by = ? AND status = 'running'",
                                  (w,)).rowcount for w in dead)

    def pending(self, models: Sequence[str]) -> int:
        """Requests for `models` not finished, webhooks not settled and answers not yet captured as traffic."""
        marks = ",".join("?" * len(models))
        with self._read() as db:
            open_ = db.execute(f"SELECT count(*) FROM requests WHERE status IN ('queued', 'running') AND model IN "
                               f"({marks})", tuple(models)).fetchone()[0]
            hooks = db.execute("SELECT count(*) FROM webhooks WHERE status = 'pending'").fetchone()[0]
            uncaptured = db.execute("SELECT count(*) FROM requests WHERE captured = 0 AND status IN "
                                    "('done', 'failed')").fetchone()[0]
        return open_ + hooks + uncaptured

    def register_worker(self, worker: str, name: str, models: Sequence[str]) -> None:
        now = time.time()
        host, pid, _ = worker.split(":", 2)
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO workers (worker, name, host, pid, models, started_at, seen_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (worker, name, host, int(pid), json.dumps(list(models)), now, now))

    def worker_stopped(self, worker: str) -> None:
        with self._write() as db:
            db.execute("UPDATE workers SET stopped_at = ?, seen_at = ? WHERE worker = ?", (time.time(), time.time(), worker))

    # ---- traffic capture and webhooks (the outbox rows the completing transaction left) ----------------
    def uncaptured(self, limit: int = 500, worker: str | None = None) -> list[sqlite3.Row]:
        """Finished requests not yet captured as traffic: those `worker` finished, or any (a sweep after a crash)."""
        mine = " AND q.claimed_by = ?" if worker else ""
        with self._read() as db:
            return db.execute(
                "SELECT q.id, q.endpoint, q.model, q.payload, q.payload_path, q.submitted_at, q.started_at, q.status, "
                "q.error, q.error_status, r.text, r.prompt_tokens, r.completion_tokens, r.latency_ms, r.completed_at, "
                "r.finish_reason, q.finished_at FROM requests q LEFT JOIN results r ON r.request_id = q.id "
                f"WHERE q.captured = 0 AND q.status IN ('done', 'failed'){mine} LIMIT ?",
                (*([worker] if worker else []), limit)).fetchall()

    def mark_captured(self, ids: Sequence[str]) -> None:
        with self._write() as db:
            db.executemany("UPDATE requests SET captured = 1 WHERE id = ?", [(i,) for i in ids])

    def claim_deliveries(self, limit: int, hold_s: float) -> list[sqlite3.Row]:
        """Due webhook deliveries, held for `hold_s` so that one worker posts each try."""
        now = time.time()
        with self._read() as db:
            if db.execute("SELECT 1 FROM webhooks WHERE status = 'pending' AND next_at <= ? LIMIT 1",
                          (now,)).fetchone() is None:
                return []  # the common case: no write lock taken
        with self._write() as db:
            rows = db.execute("SELECT w.request_id, w.url, w.attempts FROM webhooks w WHERE w.status = 'pending' AND "
                              "w.next_at <= ? ORDER BY w.next_at LIMIT ?", (now, limit)).fetchall()
            db.executemany("UPDATE webhooks SET next_at = ?, attempts = attempts + 1 WHERE request_id = ?",
                           [(now + hold_s, r["request_id"]) for r in rows])
        return rows

    def record_delivery(self, request_id: str, attempt: int, status_code: int | None, error: str | None,
                        next_at: float | None) -> None:
        """One try of a webhook: delivered on a 2xx, else retried at `next_at`, or failed when that is None."""
        now = time.time()
        ok = status_code is not None and 200 <= status_code < 300
        with self._write() as db:
            db.execute("INSERT INTO deliveries VALUES (?, ?, ?, ?, ?)", (request_id, attempt, now, status_code, error))
            if ok:
                db.execute("UPDATE webhooks SET status = 'delivered', delivered_at = ?, last_status = ?, "
                           "last_error = NULL WHERE request_id = ?", (now, status_code, request_id))
            else:
                db.execute("UPDATE webhooks SET status = ?, next_at = ?, last_status = ?, last_error = ? "
                           "WHERE request_id = ?", ("pending" if next_at is not None else "failed",
                                                    next_at if next_at is not None else now, status_code, error,
                                                    request_id))

    def notification(self, request_id: str) -> dict[str, Any]:
        """What a webhook posts: the request's id, status and result or error."""
        s = self.status(request_id)
        body: dict[str, Any] = {"id": s.id, "status": s.status, "endpoint": s.endpoint, "model": s.model}
        if s.status == "done":
            r = self.result(request_id)
            body["result"] = {"text": r.text, "finish_reason": r.finish_reason, "prompt_tokens": r.prompt_tokens,
                              "completion_tokens": r.completion_tokens, "latency_ms": r.latency_ms}
        else:
            body["error"] = s.error
        return body

    def deliveries(self, request_id: str) -> list[dict[str, Any]]:
        with self._read() as db:
            return [dict(r) for r in db.execute("SELECT attempt, at, status_code, error FROM deliveries WHERE "
                                                "request_id = ? ORDER BY at", (request_id,))]

    # ---- inside ------------------------------------------------------------------------------------
    def _row(self, db: sqlite3.Connection, request_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise UserError(self._unknown(db, request_id))
        return row

    @staticmethod
    def _unknown(db: sqlite3.Connection, request_id: str) -> str:
        recent = [r[0] for r in db.execute("SELECT id FROM requests ORDER BY submitted_at DESC LIMIT 200")]
        return unknown("async request", request_id, recent)

    def _payload(self, row: sqlite3.Row) -> AsyncRequest:
        text = row["payload"] if row["payload"] is not None else Path(row["payload_path"]).read_text(encoding="utf-8")
        return AsyncRequest.model_validate_json(text)

    @staticmethod
    def _holds(db: sqlite3.Connection, claim: Claim) -> bool:
        row = db.execute("SELECT status, lease_token FROM requests WHERE id = ?", (claim.id,)).fetchone()
        return row is not None and row["status"] == "running" and row["lease_token"] == claim.token

    @staticmethod
    def _queue_webhook(db: sqlite3.Connection, request_id: str, now: float) -> None:
        db.execute("INSERT INTO webhooks (request_id, url, status, next_at) SELECT id, webhook, 'pending', ? "
                   "FROM requests WHERE id = ? AND webhook IS NOT NULL", (now, request_id))


class _LeaseLost(Exception):
    """The claim's lease is no longer this worker's; the transaction is rolled back."""


# ---- the API callers use ---------------------------------------------------------------------------------
def submit(ws: Workspace, target: str, payload: dict[str, Any] | AsyncRequest | None = None, *,
           payload_file: str | Path | None = None, webhook: str | None = None) -> str:
    """Queue one request for an endpoint or a model and return its id at once. A payload over
    `INLINE_LIMIT_BYTES` must come as a file (`payload_file`); the queue keeps a copy under the workspace."""
    return submit_many(ws, target, [payload] if payload_file is None else [None],
                       payload_files=[payload_file] if payload_file is not None else None, webhook=webhook)[0]


def submit_many(ws: Workspace, target: str, payloads: Sequence[dict[str, Any] | AsyncRequest | None], *,
                payload_files: Sequence[str | Path] | None = None, webhook: str | None = None) -> list[str]:
    """Queue many requests for one endpoint or model in one transaction; all are checked before any is queued."""
    if webhook is not None:
        _check_webhook(webhook)
    checked: list[tuple[AsyncRequest, Path | None]] = []
    if payload_files is not None:
        for f in payload_files:
            path = Path(f).expanduser()
            checked.append((_read_payload_file(path), path))
    else:
        for i, p in enumerate(payloads):
            checked.append((_inline(p, i if len(payloads) > 1 else None), None))
    if not checked:
        raise UserError("nothing to submit: give at least one request")
    endpoint, model = resolve_target(ws, target, {r.model for r, _ in checked})
    _check_context(ws, endpoint, model, [r for r, _ in checked])
    return AsyncQueue(ws).submit_many(endpoint, model, checked, webhook)


def _check_context(ws: Workspace, endpoint: str, model: str, requests: Sequence[AsyncRequest]) -> None:
    """Refuse, before any is queued, a request whose prompt and `max_tokens` exceed the model's context length,
    as the real-time API refuses it (a model past its positions would answer garbage)."""
    from runtimes.serving.engines.context_window import check_request_fits
    from runtimes.serving.queue.worker import resolve_models

    base = next(s.base for s in resolve_models(ws, [model if endpoint == "async" else endpoint]) if s.id == model)
    for i, r in enumerate(requests):
        try:
            check_request_fits(base, messages=r.messages, prompt=r.prompt, asked=r.max_tokens,
                               workspace_root=str(ws.root))
        except UserError as e:
            raise UserError(f"async request{f' {i}' if len(requests) > 1 else ''}: {e}") from None


def status(ws: Workspace, request_id: str) -> RequestStatus:
    return AsyncQueue(ws).status(request_id)


def result(ws: Workspace, request_id: str, *, wait_s: float = 0.0, poll_s: float = 0.2) -> AsyncResult:
    """The answer of a done request; with `wait_s`, wait that long for a queued or running one to finish."""
    deadline = time.monotonic() + wait_s
    while True:
        state = status(ws, request_id)
        if state.status in FINAL or time.monotonic() >= deadline:
            return AsyncQueue(ws).result(request_id)
        time.sleep(poll_s)


def cancel(ws: Workspace, request_id: str) -> RequestStatus:
    return AsyncQueue(ws).cancel(request_id)


def summary(ws: Workspace) -> dict[str, Any]:
    """Requests per model and status, and the workers seen."""
    queue = AsyncQueue(ws)
    return {"requests": queue.counts(), "workers": queue.workers()}


def resolve_target(ws: Workspace, target: str, asked: set[str | None]) -> tuple[str, str]:
    """(endpoint name or `async`, model id) for a request sent to an endpoint or to a model directly."""
    from runtimes.serving.endpoints.store import EndpointStore

    endpoint = EndpointStore(ws).find(target.strip()) if target.strip() else None
    if endpoint is None:
        from runtimes.models.refs import resolve_served

        named = {a for a in asked if a}
        served = resolve_served(ws, target)
        if named - {target, served.id}:
            raise UserError(f"the requests name model {', '.join(sorted(named - {target, served.id}))} but are sent to "
                            f"`{served.id}`: leave `model` out of the payload, or send them to that model")
        return "async", served.id
    ids = endpoint.model_ids
    named = {a for a in asked if a}
    if not named:
        if len(ids) != 1:
            raise UserError(f"endpoint `{endpoint.name}` serves {', '.join(ids)}: name one as `model` in the payload")
        return endpoint.name, ids[0]
    if len(named) > 1 or next(iter(named)) not in ids:
        wrong = sorted(n for n in named if n not in ids) or sorted(named)
        raise UserError(unknown(f"model on endpoint `{endpoint.name}`", wrong[0], ids))
    return endpoint.name, next(iter(named))


def _inline(payload: dict[str, Any] | AsyncRequest | None, index: int | None) -> AsyncRequest:
    what = "async request" + (f" {index}" if index is not None else "")
    if payload is None:
        raise UserError(f"{what}: no payload: send `messages` or `prompt` (or a payload file)")
    request = payload if isinstance(payload, AsyncRequest) else validate_input(AsyncRequest, payload, what)
    size = len(request.model_dump_json(exclude_none=True).encode())
    if size > INLINE_LIMIT_BYTES:
        raise UserError(f"{what} is {size / 1024:.0f} KiB, over the {INLINE_LIMIT_BYTES // 1024} KiB inline limit: "
                        "pass it by file reference instead (`payload_file=PATH`, or `lathe async submit --file PATH`); "
                        "the queue keeps a copy under the workspace")
    return request


def _read_payload_file(path: Path) -> AsyncRequest:
    if not path.is_file():
        raise UserError(f"payload file {path} does not exist: write the request's JSON there first")
    size = path.stat().st_size
    if size > FILE_LIMIT_BYTES:
        raise UserError(f"payload file {path} is {size / 2**20:.0f} MiB, over the {FILE_LIMIT_BYTES // 2**20} MiB "
                        "limit of one request: split it into several requests")
    try:
        data = json.loads(path.read_bytes())
    except ValueError as e:
        raise UserError(f"payload file {path} is not JSON: {e}") from None
    return validate_input(AsyncRequest, data, f"payload file {path}")


def _check_webhook(url: str) -> None:
    from urllib.parse import urlparse

    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"webhook `{url}` is not an http(s) URL: give one like http://127.0.0.1:8000/hook")


# ---- who holds a lease -----------------------------------------------------------------------------------
def worker_id() -> str:
    """`host:pid:start time`: names this process so that a dead one is told from one reusing its pid."""
    import psutil

    return f"{socket.gethostname()}:{os.getpid()}:{psutil.Process().create_time():.2f}"


def _on_this_host(worker: str) -> bool:
    return worker.split(":", 1)[0] == socket.gethostname()


def _process_alive(worker: str) -> bool:
    import psutil

    try:
        host, pid, started = worker.split(":", 2)
        if host != socket.gethostname():
            return True  # another machine's worker: only its lease tells
        p = psutil.Process(int(pid))
        return p.status() != psutil.STATUS_ZOMBIE and f"{p.create_time():.2f}" == started
    except (ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
        return False

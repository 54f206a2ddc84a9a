"""Endpoints and their events in the workspace's `state.sqlite`: what each serves, how (real-time or serverless),
where it listens, the hash of its API key, its process and status, and its cold-start history.

Every write is one short transaction, shared by the CLI, the agent and the endpoint processes. It never starts
or signals a process (that is `endpoints`), and it never holds an API key, only its hash.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Literal

from core.errors import UserError
from catalog.suggestions import unknown
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace

Mode = Literal["realtime", "serverless"]
Status = Literal["starting", "running", "idle", "stopped", "failed"]
LIVE: tuple[str, ...] = ("starting", "running", "idle")  # a process should be behind these
COLD_STARTS_KEPT = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY, models TEXT NOT NULL, mode TEXT NOT NULL, idle_timeout REAL NOT NULL,
    host TEXT NOT NULL, port INTEGER, fixed_port INTEGER, key_hash TEXT NOT NULL, local_key_hash TEXT,
    engine TEXT NOT NULL DEFAULT '{}', capture_rate REAL NOT NULL DEFAULT 1.0, pid INTEGER,
    status TEXT NOT NULL, error TEXT, cold_starts TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL,
    started_at REAL, stopped_at REAL, owner TEXT, scaling TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS endpoint_events (
    endpoint TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT);
CREATE INDEX IF NOT EXISTS endpoint_events_endpoint ON endpoint_events (endpoint, seq);
"""


@dataclass(frozen=True)
class Endpoint:
    name: str
    models: list[dict[str, Any]]  # per served version: ref (as deployed), id, base, base_ref, adapter, version, …
    mode: str
    idle_timeout: float
    host: str
    port: int | None  # where it listens (or last listened)
    fixed_port: int | None  # the port the user asked for; None: any free one at each start
    key_hash: str
    local_key_hash: str | None
    engine: dict[str, Any]  # Engine options: max_adapters, quantize, …
    capture_rate: float
    pid: int | None
    status: str
    error: str | None
    cold_starts: list[dict[str, Any]]
    created_at: float
    started_at: float | None
    stopped_at: float | None
    owner: str | None = None  # who deployed it: their API key stops working when they are disabled
    scaling: dict[str, Any] | None = None  # replicas and admission: see `scaling.Scaling`; None: the defaults

    @property
    def base_url(self) -> str | None:
        """`http://host:port`, where it listens now (or last listened)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}" if self.port else None

    @property
    def url(self) -> str | None:
        """The OpenAI API root (`…/v1`), as clients' `base_url` takes it."""
        return f"{self.base_url}/v1" if self.port else None

    @property
    def model_ids(self) -> list[str]:
        return [m["id"] for m in self.models]

    def to_json(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("key_hash", "local_key_hash")}
        d["url"] = self.url
        return d


@dataclass(frozen=True)
class EndpointEvent:
    endpoint: str
    seq: int
    at: float
    kind: str
    message: str
    data: dict[str, Any] | None


class EndpointStore:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        ensure_schema(ws.state_path, _SCHEMA)
        with transaction(ws.state_path, immediate=True) as db:  # a workspace made before these columns
            columns = {r[1] for r in db.execute("PRAGMA table_info(endpoints)")}
            if "owner" not in columns:
                db.execute("ALTER TABLE endpoints ADD COLUMN owner TEXT")
            if "scaling" not in columns:
                db.execute("ALTER TABLE endpoints ADD COLUMN scaling TEXT NOT NULL DEFAULT '{}'")

    def _db(self) -> Any:
        return transaction(self.ws.state_path, immediate=True)

    def create(self, *, name: str, models: list[dict[str, Any]], mode: str, idle_timeout: float, host: str,
               fixed_port: int | None, key_hash: str, local_key_hash: str | None, engine: dict[str, Any],
               capture_rate: float, owner: str | None = None, scaling: dict[str, Any] | None = None) -> Endpoint:
        with self._db() as db:
            if db.execute("SELECT 1 FROM endpoints WHERE name = ?", (name,)).fetchone():
                raise UserError(f"an endpoint named `{name}` already exists: choose another name (--name) or "
                                f"delete it first (`lathe endpoints delete {name}`)")
            db.execute("INSERT INTO endpoints (name, models, mode, idle_timeout, host, port, fixed_port, key_hash, "
                       "local_key_hash, engine, capture_rate, status, created_at, owner, scaling) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'stopped', ?, ?, ?)",
                       (name, json.dumps(models), mode, idle_timeout, host, fixed_port, fixed_port, key_hash,
                        local_key_hash, json.dumps(engine), capture_rate, time.time(), owner,
                        json.dumps(scaling or {})))
            _event(db, name, "created", f"created: {mode}, serving {', '.join(m['id'] for m in models)}",
                   {"models": [m["id"] for m in models], "mode": mode})
        return self.get(name)

    def get(self, name: str) -> Endpoint:
        found = self.find(name)
        if found is None:
            raise UserError(unknown("endpoint", name, [e.name for e in self.list()]))
        return found

    def find(self, name: str) -> Endpoint | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM endpoints WHERE name = ?", (name,)).fetchone()
        return _endpoint(row) if row is not None else None

    def list(self) -> list[Endpoint]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM endpoints ORDER BY created_at, name").fetchall()
        return [_endpoint(r) for r in rows]

    def set_status(self, name: str, status: Status, message: str | None = None, *, error: str | None = None,
                   expect: tuple[str, ...] | None = None, **fields: Any) -> bool:
        """Move an endpoint to `status` (only from one of `expect` when given), with other columns; records an
        event. False when it was not in an expected status (another process moved it first)."""
        with self._db() as db:
            row = db.execute("SELECT status FROM endpoints WHERE name = ?", (name,)).fetchone()
            if row is None or (expect is not None and row[0] not in expect):
                return False
            sets: dict[str, Any] = {"status": status, "error": error, **fields}
            if status in ("stopped", "failed"):
                sets.update(pid=None, stopped_at=time.time())
            _update(db, name, sets)
            _event(db, name, "status", message or status, {"status": status, **({"error": error} if error else {})})
        return True

    def update(self, name: str, **fields: Any) -> None:
        with self._db() as db:
            _update(db, name, fields)

    def set_key_hash(self, name: str, key_hash: str, by: str) -> None:
        """Replace the endpoint's API key (its hash) and record who did; the owner stays the same."""
        with self._db() as db:
            if db.execute("UPDATE endpoints SET key_hash = ? WHERE name = ?", (key_hash, name)).rowcount != 1:
                raise UserError(unknown("endpoint", name, [r[0] for r in db.execute("SELECT name FROM endpoints")]))
            _event(db, name, "key_rotated", f"API key rotated by {by}", {"by": by})

    def add_event(self, name: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self._db() as db:
            _event(db, name, kind, message, data)
            if kind == "cold_start" and data is not None:
                row = db.execute("SELECT cold_starts FROM endpoints WHERE name = ?", (name,)).fetchone()
                if row is not None:
                    history = [*json.loads(row[0]), {"at": time.time(), **data}][-COLD_STARTS_KEPT:]
                    _update(db, name, {"cold_starts": json.dumps(history)})

    def events(self, name: str, kinds: tuple[str, ...] | None = None) -> list[EndpointEvent]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM endpoint_events WHERE endpoint = ? ORDER BY seq", (name,)).fetchall()
        events = [EndpointEvent(r["endpoint"], r["seq"], r["at"], r["kind"], r["message"],
                                json.loads(r["data"]) if r["data"] else None) for r in rows]
        return [e for e in events if kinds is None or e.kind in kinds]

    def delete(self, name: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM endpoints WHERE name = ?", (name,))
            db.execute("DELETE FROM endpoint_events WHERE endpoint = ?", (name,))

    def ports_in_use(self, except_name: str | None = None) -> dict[int, str]:
        """Ports other endpoints hold or asked for: a fixed port is promised even while stopped."""
        taken: dict[int, str] = {}
        for e in self.list():
            if e.name == except_name:
                continue
            if e.fixed_port:
                taken[e.fixed_port] = e.name
            if e.port and e.status in LIVE:
                taken[e.port] = e.name
        return taken


_COLUMNS = frozenset({"models", "mode", "idle_timeout", "host", "port", "fixed_port", "key_hash", "local_key_hash",
                      "engine", "capture_rate", "pid", "status", "error", "cold_starts", "started_at", "stopped_at",
                      "scaling"})


def _update(db: sqlite3.Connection, name: str, fields: dict[str, Any]) -> None:
    bad = set(fields) - _COLUMNS
    if bad:
        raise ValueError(f"not endpoint columns: {sorted(bad)}")
    if not fields:
        return
    values = [json.dumps(v) if k in ("models", "engine", "scaling") else v for k, v in fields.items()]
    db.execute(f"UPDATE endpoints SET {', '.join(f'{k} = ?' for k in fields)} WHERE name = ?", (*values, name))


def _event(db: sqlite3.Connection, name: str, kind: str, message: str, data: dict[str, Any] | None) -> None:
    db.execute("INSERT INTO endpoint_events (endpoint, at, kind, message, data) VALUES (?, ?, ?, ?, ?)",
               (name, time.time(), kind, message, json.dumps(data) if data is not None else None))


def _endpoint(r: sqlite3.Row) -> Endpoint:
    return Endpoint(name=r["name"], models=json.loads(r["models"]), mode=r["mode"], idle_timeout=r["idle_timeout"],
                    host=r["host"], port=r["port"], fixed_port=r["fixed_port"], key_hash=r["key_hash"],
                    local_key_hash=r["local_key_hash"], engine=json.loads(r["engine"] or "{}"),
                    capture_rate=r["capture_rate"], pid=r["pid"], status=r["status"], error=r["error"],
                    cold_starts=json.loads(r["cold_starts"] or "[]"), created_at=r["created_at"],
                    started_at=r["started_at"], stopped_at=r["stopped_at"],
                    owner=r["owner"], scaling=json.loads(r["scaling"] or "{}"))

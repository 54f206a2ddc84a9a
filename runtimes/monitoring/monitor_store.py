"""Monitors, their runs and their alerts in the workspace's `state.sqlite` (tables `monitors`, `monitor_runs`,
`alerts`). Next-run times live here, so a schedule survives restarts.

Every call is one transaction of `core.state_db`, safe from several processes; claiming a due monitor is atomic, so
two schedulers never run the same monitor twice for one due time. A run's lifecycle (running, then its outcome) goes
through the same helpers as every other store, so that a monitor run can become a kind of job. It computes nothing
and never reads the warehouse.
"""
from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any

from catalog.suggestions import unknown
from core.errors import UserError
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace

_SCHEMA = """
CREATE TABLE IF NOT EXISTS monitors (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL, spec TEXT NOT NULL,
    created_at REAL NOT NULL, created_by TEXT, enabled INTEGER NOT NULL DEFAULT 1,
    next_run_at REAL NOT NULL, last_run_at REAL, last_status TEXT);
CREATE TABLE IF NOT EXISTS monitor_runs (
    id TEXT PRIMARY KEY, monitor_id TEXT NOT NULL, started_at REAL NOT NULL, finished_at REAL,
    window_start TEXT NOT NULL, window_end TEXT NOT NULL, status TEXT NOT NULL, summary TEXT,
    report_dir TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, monitor_id TEXT NOT NULL, run_id TEXT NOT NULL, created_at REAL NOT NULL,
    endpoint TEXT NOT NULL, rule TEXT NOT NULL, feature TEXT, test TEXT, statistic REAL, threshold REAL,
    message TEXT NOT NULL, acknowledged_at REAL);
CREATE INDEX IF NOT EXISTS monitor_runs_monitor ON monitor_runs (monitor_id, started_at);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts (created_at);
INSERT OR IGNORE INTO schema_version VALUES ('monitoring', 1);
"""


@dataclass(frozen=True)
class MonitorRow:
    id: str
    name: str
    endpoint: str
    spec: dict[str, Any]
    created_at: float
    created_by: str | None
    enabled: bool
    next_run_at: float
    last_run_at: float | None
    last_status: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunRow:
    id: str
    monitor_id: str
    started_at: float
    finished_at: float | None
    window_start: str
    window_end: str
    status: str
    summary: dict[str, Any] | None
    report_dir: str | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Alert:
    id: str
    monitor_id: str
    run_id: str
    created_at: float
    endpoint: str
    rule: str
    feature: str | None
    test: str | None
    statistic: float | None
    threshold: float | None
    message: str
    acknowledged_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class MonitorStore:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws.require()
        self.path = self.ws.state_path
        ensure_schema(self.path, _SCHEMA)

    def _db(self, immediate: bool = False) -> Any:
        return transaction(self.path, immediate)

    # ---- monitors ----------------------------------------------------------------------------------------
    def add(self, row: MonitorRow) -> None:
        with self._db() as db:
            try:
                db.execute("INSERT INTO monitors VALUES (?,?,?,?,?,?,?,?,?,?)",
                           (row.id, row.name, row.endpoint, json.dumps(row.spec), row.created_at, row.created_by,
                            int(row.enabled), row.next_run_at, row.last_run_at, row.last_status))
            except sqlite3.IntegrityError:
                raise UserError(f"a monitor named `{row.name}` already exists: choose another name, or delete "
                                f"it first (`lathe monitors delete {row.name}`)") from None

    def get(self, id_or_name: str) -> MonitorRow:
        with self._db() as db:
            r = db.execute("SELECT * FROM monitors WHERE id = ? OR name = ?", (id_or_name, id_or_name)).fetchone()
            if r is None:
                names = [x["name"] for x in db.execute("SELECT name FROM monitors")]
                raise UserError(unknown("monitor", id_or_name, names))
        return _monitor(r)

    def list(self) -> list[MonitorRow]:
        with self._db() as db:
            return [_monitor(r) for r in db.execute("SELECT * FROM monitors ORDER BY created_at, id")]

    def delete(self, id_or_name: str) -> MonitorRow:
        m = self.get(id_or_name)
        with self._db() as db:
            db.execute("DELETE FROM monitors WHERE id = ?", (m.id,))
        return m

    def set_enabled(self, id_or_name: str, enabled: bool) -> MonitorRow:
        m = self.get(id_or_name)
        with self._db() as db:
            db.execute("UPDATE monitors SET enabled = ? WHERE id = ?", (int(enabled), m.id))
        return self.get(m.id)

    def due(self, now: float) -> list[MonitorRow]:
        with self._db() as db:
            return [_monitor(r) for r in db.execute(
                "SELECT * FROM monitors WHERE enabled = 1 AND next_run_at <= ? ORDER BY next_run_at, id", (now,))]

    def claim(self, monitor_id: str, now: float, every: float) -> float | None:
        """Claim a due monitor's run: the latest due time at or before `now` (missed ones coalesce into it), with
        the next run moved to the due time after it, on the same grid. That due time for the one caller that
        claimed it (it runs the monitor), None for every other (not due, disabled, or claimed already)."""
        with self._db(immediate=True) as db:
            r = db.execute("SELECT next_run_at FROM monitors WHERE id = ? AND enabled = 1", (monitor_id,)).fetchone()
            if r is None or r["next_run_at"] > now:
                return None
            due = r["next_run_at"] + every * math.floor((now - r["next_run_at"]) / every)
            db.execute("UPDATE monitors SET next_run_at = ? WHERE id = ?", (due + every, monitor_id))
            return due

    def postpone(self, monitor_id: str, until: float) -> None:
        """A monitor that just ran is next due one interval later (never sooner than it already was)."""
        with self._db() as db:
            db.execute("UPDATE monitors SET next_run_at = ? WHERE id = ? AND next_run_at < ?", (until, monitor_id, until))

    # ---- runs --------------------------------------------------------------------------------------------
    def start_run(self, run_id: str, monitor_id: str, window_start: str, window_end: str) -> None:
        with self._db() as db:
            db.execute("INSERT INTO monitor_runs (id, monitor_id, started_at, window_start, window_end, status) "
                       "VALUES (?,?,?,?,?, 'running')", (run_id, monitor_id, time.time(), window_start, window_end))

    def finish_run(self, run_id: str, monitor_id: str, status: str, summary: dict[str, Any] | None,
                   report_dir: str | None, alerts: list[Alert], error: str | None = None) -> None:
        """The run's outcome and its alerts together, in one transaction."""
        now = time.time()
        with self._db(immediate=True) as db:
            db.execute("UPDATE monitor_runs SET finished_at = ?, status = ?, summary = ?, report_dir = ?, error = ? "
                       "WHERE id = ?", (now, status, json.dumps(summary, default=str) if summary is not None else None,
                                        report_dir, error, run_id))
            db.executemany("INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                           [(a.id, a.monitor_id, a.run_id, a.created_at, a.endpoint, a.rule, a.feature, a.test,
                             a.statistic, a.threshold, a.message, a.acknowledged_at) for a in alerts])
            db.execute("UPDATE monitors SET last_run_at = ?, last_status = ? WHERE id = ?", (now, status, monitor_id))

    def runs(self, monitor_id: str, limit: int = 20) -> list[RunRow]:
        with self._db() as db:
            return [_run(r) for r in db.execute(
                "SELECT * FROM monitor_runs WHERE monitor_id = ? ORDER BY started_at DESC, id DESC LIMIT ?",
                (monitor_id, limit))]

    def get_run(self, run_id: str) -> RunRow:
        with self._db() as db:
            r = db.execute("SELECT * FROM monitor_runs WHERE id = ?", (run_id,)).fetchone()
        if r is None:
            raise UserError(f"no monitor run `{run_id}`: `lathe monitors show MONITOR` lists the runs")
        return _run(r)

    # ---- alerts ------------------------------------------------------------------------------------------
    def alerts(self, *, monitor_id: str | None = None, endpoint: str | None = None, since: float | None = None,
               open_only: bool = False, limit: int = 100) -> list[Alert]:
        where, args = [], []
        for clause, value in (("monitor_id = ?", monitor_id), ("endpoint = ?", endpoint), ("created_at >= ?", since)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if open_only:
            where.append("acknowledged_at IS NULL")
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY created_at DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
        return [Alert(**dict(r)) for r in rows]

    def acknowledge(self, alert_id: str) -> None:
        with self._db() as db:
            cur = db.execute("UPDATE alerts SET acknowledged_at = ? WHERE id = ? AND acknowledged_at IS NULL",
                             (time.time(), alert_id))
            if cur.rowcount == 0 and db.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone() is None:
                raise UserError(f"no alert `{alert_id}`: `lathe monitors alerts` lists them")


def _monitor(r: sqlite3.Row) -> MonitorRow:
    d = dict(r)
    return MonitorRow(**{**d, "spec": json.loads(d["spec"]), "enabled": bool(d["enabled"])})


def _run(r: sqlite3.Row) -> RunRow:
    d = dict(r)
    return RunRow(**{**d, "summary": json.loads(d["summary"]) if d["summary"] else None})

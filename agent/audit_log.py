"""The audit log of review decisions in the workspace's `state.sqlite`: who decided what, when, on which plan.

Rows are only ever added; recording the same decision twice (a replayed graph step) keeps one row.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.workspace import Workspace

DecisionKind = Literal["approved", "rejected", "edited", "refused"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    decision_id TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
)"""


class AuditEntry(BaseModel):
    decision_id: str
    at: str = ""
    thread_id: str
    principal: str
    plan_hash: str
    decision: DecisionKind
    reason: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)


def connect(ws: Workspace) -> sqlite3.Connection:
    db = sqlite3.connect(ws.state_path, timeout=30)
    db.execute(_SCHEMA)
    return db


def record(ws: Workspace, entry: AuditEntry) -> None:
    at = entry.at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    db = connect(ws)
    try:
        with db:
            db.execute(
                "INSERT OR IGNORE INTO audit_log (decision_id, at, thread_id, principal, plan_hash, decision, reason, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.decision_id, at, entry.thread_id, entry.principal, entry.plan_hash, entry.decision,
                 entry.reason, json.dumps(entry.detail, default=str)))
    finally:
        db.close()


def entries(ws: Workspace, thread_id: str | None = None) -> list[AuditEntry]:
    """Every recorded decision, oldest first, optionally of one thread."""
    db = connect(ws)
    try:
        sql = "SELECT decision_id, at, thread_id, principal, plan_hash, decision, reason, detail FROM audit_log"
        rows = db.execute(sql + (" WHERE thread_id = ? ORDER BY id" if thread_id else " ORDER BY id"),
                          (thread_id,) if thread_id else ()).fetchall()
    finally:
        db.close()
    return [AuditEntry(decision_id=r[0], at=r[1], thread_id=r[2], principal=r[3], plan_hash=r[4], decision=r[5],
                       reason=r[6], detail=json.loads(r[7])) for r in rows]

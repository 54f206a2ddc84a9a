"""The list of conversation threads in `state.sqlite`: id, title, who started it, when it was last used.

The conversations themselves live in LangGraph's checkpoints; this table only lets front-ends list them.
"""
from __future__ import annotations

import datetime as dt
import sqlite3

from pydantic import BaseModel

from core.workspace import Workspace

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_threads (
    thread_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    started_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    turns INTEGER NOT NULL DEFAULT 0
)"""

TITLE_CHARS = 80


class ThreadInfo(BaseModel):
    thread_id: str
    title: str
    started_by: str
    created_at: str
    updated_at: str
    turns: int


def _connect(ws: Workspace) -> sqlite3.Connection:
    db = sqlite3.connect(ws.state_path, timeout=30)
    db.execute(_SCHEMA)
    return db


def touch(ws: Workspace, thread_id: str, text: str, principal: str) -> None:
    """Note one more turn in `thread_id`; the first message becomes the title."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    title = " ".join(text.split())
    title = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
    db = _connect(ws)
    try:
        with db:
            db.execute(
                "INSERT INTO agent_threads VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT(thread_id) DO UPDATE SET "
                "updated_at = excluded.updated_at, turns = turns + 1", (thread_id, title, principal, now, now))
    finally:
        db.close()


def list_threads(ws: Workspace) -> list[ThreadInfo]:
    """Threads, most recently used first."""
    if not ws.state_path.exists():
        return []
    db = _connect(ws)
    try:
        rows = db.execute("SELECT thread_id, title, started_by, created_at, updated_at, turns FROM agent_threads "
                          "ORDER BY updated_at DESC, thread_id").fetchall()
    finally:
        db.close()
    return [ThreadInfo(thread_id=r[0], title=r[1], started_by=r[2], created_at=r[3], updated_at=r[4], turns=r[5])
            for r in rows]

"""Chat history of the web UI: Chainlit's own SQLAlchemy data layer on a SQLite file in the workspace,
with the tables that layer expects, so threads and their messages are listed again after a restart.

It stores what the UI showed; the agent's conversations, plans and approvals stay in `state.sqlite`
(the source of truth), and nothing here is read by the agent.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

# The columns Chainlit 2.12's SQLAlchemyDataLayer reads and writes (its documented schema, in SQLite types).
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        "id" TEXT PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE, "metadata" TEXT NOT NULL, "createdAt" TEXT)""",
    """CREATE TABLE IF NOT EXISTS threads (
        "id" TEXT PRIMARY KEY, "createdAt" TEXT, "name" TEXT, "userId" TEXT, "userIdentifier" TEXT,
        "tags" TEXT, "metadata" TEXT, FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS steps (
        "id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL, "threadId" TEXT NOT NULL,
        "parentId" TEXT, "streaming" BOOLEAN NOT NULL, "waitForAnswer" BOOLEAN, "isError" BOOLEAN,
        "metadata" TEXT, "tags" TEXT, "input" TEXT, "output" TEXT, "createdAt" TEXT, "command" TEXT,
        "start" TEXT, "end" TEXT, "generation" TEXT, "showInput" TEXT, "language" TEXT, "indent" INT,
        "defaultOpen" BOOLEAN, "autoCollapse" BOOLEAN, "modes" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS elements (
        "id" TEXT PRIMARY KEY, "threadId" TEXT, "type" TEXT, "url" TEXT, "chainlitKey" TEXT, "name" TEXT NOT NULL,
        "display" TEXT, "objectKey" TEXT, "size" TEXT, "page" INT, "language" TEXT, "forId" TEXT, "mime" TEXT,
        "props" TEXT, "autoPlay" BOOLEAN, "playerConfig" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS feedbacks (
        "id" TEXT PRIMARY KEY, "forId" TEXT NOT NULL, "threadId" TEXT NOT NULL, "value" INT NOT NULL,
        "comment" TEXT, FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
)


def ensure_schema(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        for ddl in SCHEMA:
            db.execute(ddl)


def data_layer(path: Path) -> Any:
    """Chainlit's SQLAlchemyDataLayer on `path` (SQLite through aiosqlite), its tables created if missing."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    ensure_schema(path)
    return SQLAlchemyDataLayer(conninfo=f"sqlite+aiosqlite:///{path}")

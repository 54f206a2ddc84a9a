"""The workspace's state database (`state.sqlite`, WAL): creating a store's tables and one transaction per call,
shared by every store (jobs, batches, endpoints, monitors) so they open it the same way.

Plain SQLite plumbing: it holds no schema of its own and never decides what a store keeps.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30


def ensure_schema(path: Path, schema: str) -> None:
    """Create the tables `schema` names if they are missing, in WAL mode (readers never wait for writers)."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    finally:
        db.close()


@contextmanager
def transaction(path: Path, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """One transaction, committed when the block ends and rolled back when it raises. `immediate` takes the write
    lock up front, so a read-then-write (claiming a queued job) is atomic across processes."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    db.row_factory = sqlite3.Row
    try:
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()

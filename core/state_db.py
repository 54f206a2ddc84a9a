"""SQLite files of the workspace (`state.sqlite`, the traffic spool, the async queue, the scheduler's job store),
all in WAL mode: creating a store's tables and one transaction per call, so that every store opens SQLite the same way.

Plain SQLite plumbing: it holds no schema of its own and never decides what a store keeps.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30

_READY: set[tuple[str, int]] = set()  # (file, schema) pairs this process has already created


def ensure_schema(path: Path, schema: str, *, timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """Create the file (and its folder) and the tables `schema` names if they are missing, in WAL mode (readers
    never wait for writers). Once per file and schema in a process, while the file exists."""
    key = (str(path), hash(schema))
    if key in _READY and path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    try:
        _wal(db, timeout_s)
        db.executescript(schema)
    finally:
        db.close()
    _READY.add(key)


@contextmanager
def transaction(path: Path, immediate: bool = False, *, durable: bool = True,
                timeout_s: float = BUSY_TIMEOUT_S) -> Iterator[sqlite3.Connection]:
    """One transaction, committed when the block ends and rolled back when it raises. `immediate` takes the write
    lock up front, so a read-then-write (claiming a queued job) is atomic across processes. `durable=False` lets a
    commit skip the disk sync (a power cut may lose the last commits, never corrupt the file): for spools."""
    db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    try:
        db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()


def _wal(db: sqlite3.Connection, timeout_s: float) -> None:
    # Switching to WAL is not covered by the busy timeout: processes creating one file at once retry.
    deadline = time.monotonic() + timeout_s
    while db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)

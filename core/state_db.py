"""SQLite files of the workspace (`state.sqlite`, the traffic spool, the async queue, the scheduler's job store),
all in WAL mode: creating a store's tables and one transaction per call, so that every store opens SQLite the same way.

Plain SQLite plumbing: it holds no schema of its own and never decides what a store keeps.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30


def ensure_schema(path: Path, schema: str, *, timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """Create the file (and its folder) and the tables `schema` names if they are missing, in WAL mode (readers
    never wait for writers). Cheap on a file already set up: it runs on this thread's open connection."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = _connection(path)
    if db.in_transaction:  # inside a transaction on this file, in this thread: a connection of its own
        db = _connect(path)
    db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    _wal(db, timeout_s)
    db.executescript(schema)
    if _kept().get(str(path), (None, None, None))[2] is not db:
        db.close()


@contextmanager
def transaction(path: Path, immediate: bool = False, *, durable: bool = True,
                timeout_s: float = BUSY_TIMEOUT_S) -> Iterator[sqlite3.Connection]:
    """One transaction, committed when the block ends and rolled back when it raises. `immediate` takes the write
    lock up front, so a read-then-write (claiming a queued job) is atomic across processes. `durable=False` lets a
    commit skip the disk sync (a power cut may lose the last commits, never corrupt the file): for spools."""
    db = _connection(path)
    if db.in_transaction:  # a transaction inside another one on this file, in this thread: a connection of its own
        db = _connect(path)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    except BaseException:
        _forget(path, db)
        raise
    try:
        yield db
    except BaseException:
        _end(path, db, "ROLLBACK")
        raise
    _end(path, db, "COMMIT")


# A connection per thread and file, kept open: a new connection parses the whole schema at its first statement
# (milliseconds for a store with triggers), which would cost more than the transaction itself.
_KEPT = threading.local()
_KEPT_PER_THREAD = 16  # files one thread keeps open at most; the least recently used is closed first


def _connection(path: Path) -> sqlite3.Connection:
    kept = _kept()
    key = str(path)
    try:
        st = os.stat(path)
        ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except FileNotFoundError:
        ident = None
    held = kept.get(key)
    # A connection made before a fork, or to a file since removed or replaced, is not reused.
    if held is not None and held[0] == os.getpid() and held[1] == ident:
        kept.move_to_end(key)
        return held[2]
    if held is not None:
        _forget(path, held[2])
    db = _connect(path)
    st = os.stat(path)
    kept[key] = (os.getpid(), (st.st_dev, st.st_ino), db)
    while len(kept) > _KEPT_PER_THREAD:
        _, (_, _, oldest) = kept.popitem(last=False)
        oldest.close()
    return db


def _kept() -> OrderedDict[str, tuple[int, tuple[int, int], sqlite3.Connection]]:
    return _KEPT.__dict__.setdefault("conns", OrderedDict())


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    return db


def _end(path: Path, db: sqlite3.Connection, statement: str) -> None:
    try:
        db.execute(statement)
    except BaseException:
        _forget(path, db)  # a connection whose transaction could not end is never used again
        raise
    if _kept().get(str(path), (None, None, None))[2] is not db:
        db.close()  # one of a nested transaction's own


def _forget(path: Path, db: sqlite3.Connection) -> None:
    kept = _kept()
    if kept.get(str(path), (None, None, None))[2] is db:
        del kept[str(path)]
    try:
        db.close()
    except sqlite3.Error:
        pass


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

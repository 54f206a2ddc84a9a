"""A batch job's predictions as they are made: a SQLite file in the job folder, one transaction per micro-batch, so a
crash loses at most the micro-batch in flight and a restarted job skips every row already here.

SQLite, not the warehouse: DuckDB lets no other process in while one writes, and the app may be reading it for
the hours a batch runs; the rows move there once, at the end (batch_output.py). A prediction is never changed.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
import json
from dataclasses import astuple, dataclass
from pathlib import Path

from runtimes.serving.batch.source import BatchRow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    row_key TEXT PRIMARY KEY, key_value TEXT, prompt TEXT NOT NULL, prediction TEXT, finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, latency_ms REAL NOT NULL,
    model TEXT NOT NULL, attempt INTEGER NOT NULL, created_at TEXT NOT NULL,
    traffic INTEGER NOT NULL DEFAULT 0);
CREATE TRIGGER IF NOT EXISTS predictions_written_once
BEFORE UPDATE OF row_key, key_value, prompt, prediction, finish_reason, prompt_tokens, completion_tokens, latency_ms,
    model, attempt, created_at ON predictions
BEGIN SELECT RAISE(ABORT, 'a prediction is written once'); END;
CREATE TABLE IF NOT EXISTS source (row_key TEXT PRIMARY KEY, prompt TEXT NOT NULL, messages TEXT);
"""


@dataclass(frozen=True)
class Prediction:
    row_key: str
    key_value: str | None  # the key column's value as text (cast back to its type when published)
    prompt: str
    prediction: str | None  # None for a row with no prompt
    finish_reason: str  # stop, length, skipped (no prompt) or error (past the context length)
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    model: str
    attempt: int
    created_at: str  # UTC, `YYYY-MM-DD HH:MM:SS.ffffff`


class BatchSpool:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self, *, any_thread: bool = False) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=not any_thread)
        try:
            db.execute("PRAGMA busy_timeout = 60000")
            yield db
        finally:
            db.close()

    def reset_source(self) -> None:
        """Forget the source rows an earlier attempt read (the predictions stay)."""
        with self._db() as db:
            db.execute("DELETE FROM source")

    def add_source(self, rows: list[BatchRow]) -> None:
        """One chunk of the source as streamed from the warehouse, in source order."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO source VALUES (?, ?, ?)",
                           [(r.key, r.prompt, json.dumps(r.messages) if r.messages is not None else None)
                            for r in rows])
            db.execute("COMMIT")

    def todo(self, limit: int) -> list[BatchRow]:
        """The next source rows, in source order, that have no prediction yet."""
        with self._db() as db:
            rows = db.execute("SELECT s.row_key, s.prompt, s.messages FROM source s WHERE NOT EXISTS "
                              "(SELECT 1 FROM predictions p WHERE p.row_key = s.row_key) ORDER BY s.rowid LIMIT ?",
                              (limit,)).fetchall()
        return [BatchRow(k, k, p, json.loads(m) if m else None) for k, p, m in rows]

    def done_count(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT count(*) FROM predictions").fetchone()[0])

    def commit(self, rows: list[Prediction]) -> None:
        """One micro-batch, all or nothing; a row already here is an error, never a second answer."""
        if not rows:
            return
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?,?,0)",
                               [astuple(r) for r in rows])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def unrecorded(self, limit: int = 1000) -> list[Prediction]:
        """Predictions not yet captured as traffic (the capture runs after each commit, and again on resume)."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM predictions WHERE traffic = 0 ORDER BY rowid LIMIT ?", (limit,)).fetchall()
        return [Prediction(*r[:-1]) for r in rows]

    def mark_recorded(self, keys: list[str]) -> None:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("UPDATE predictions SET traffic = 1 WHERE row_key = ?", [(k,) for k in keys])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def all(self) -> list[Prediction]:
        return [p for chunk in self.chunks() for p in chunk]

    def chunks(self, size: int = 50_000) -> Iterator[list[Prediction]]:
        """Every prediction in the order made, `size` at a time: a million rows never sit in memory at once. The
        reader may move between threads (DuckDB pulls a stream from its own), one at a time."""
        with self._db(any_thread=True) as db:
            cursor = db.execute("SELECT * FROM predictions ORDER BY rowid")
            while rows := cursor.fetchmany(size):
                yield [Prediction(*r[:-1]) for r in rows]

    def count_by_attempt(self) -> dict[int, int]:
        with self._db() as db:
            return dict(db.execute("SELECT attempt, count(*) FROM predictions GROUP BY attempt ORDER BY attempt"))

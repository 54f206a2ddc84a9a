"""The online store: the latest value of each feature per entity key, for reads in well under a millisecond.

Embedded SQLite by default (one table per view version, keyed by the entity key; faster than DuckDB for point
reads, see docs/benchmarks.md), Redis where `[features] online_store = "redis://…"` is set in lathe.toml. It
stores what materialization hands it and never reads the warehouse.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

from core.errors import UserError
from core.workspace import Workspace

T = TypeVar("T")
Row = tuple[float, list[Any]]  # (event time as epoch seconds, feature values in the view's order)


class OnlineStore(Protocol):
    def has(self, table: str) -> bool: ...
    def write(self, table: str, columns: list[str], rows: list[tuple]) -> None: ...
    def read(self, table: str, columns: list[str], keys: Sequence[str]) -> dict[str, Row]: ...
    def drop(self, table: str) -> None: ...
    def read_views(self, asks: Sequence[tuple[str, list[str], Sequence[str]]]) -> list[dict[str, Row]]: ...


def open_online_store(ws: Workspace) -> OnlineStore:
    """The store lathe.toml configures: SQLite in the workspace unless `[features] online_store` names Redis."""
    conf = (ws.settings.model_extra or {}).get("features") or {}
    url = conf.get("online_store") if isinstance(conf, dict) else None
    if url in (None, "", "sqlite"):
        return SqliteOnlineStore(ws.root / "features" / "online.sqlite")
    if isinstance(url, str) and url.startswith(("redis://", "rediss://", "unix://")):
        return RedisOnlineStore(url, prefix=f"lathe:{ws.settings.name}:{_store_id(ws)}:")
    raise UserError(f"{ws.settings_path}: `[features] online_store = {url!r}` is not a store: write \"sqlite\" (the "
                    "default) or a Redis URL such as \"redis://localhost:6379/0\"")


def _store_id(ws: Workspace) -> str:
    """This workspace's own id in a shared store, made once: two workspaces of one name (and their own records of
    what they materialized) must never read or overwrite each other's values."""
    path = ws.root / "features" / "store_id"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".store_id.{uuid.uuid4().hex}")
        tmp.write_text(uuid.uuid4().hex[:16], encoding="utf-8")
        try:
            os.link(tmp, path)  # whole or not at all; of two first runs, one id wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text(encoding="utf-8").strip()


def value(v: Any) -> Any:
    """A value as the online store keeps it: dates and times as ISO text, everything else as DuckDB gave it."""
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return v


def epoch(v: dt.datetime | dt.date) -> float:
    """Seconds since the epoch; a timestamp without a zone is taken as UTC, as the warehouse's are."""
    if not isinstance(v, dt.datetime):
        v = dt.datetime(v.year, v.month, v.day)
    if v.tzinfo is None:
        v = v.replace(tzinfo=dt.timezone.utc)
    return v.timestamp()


def online_key(parts: Sequence[Any]) -> str:
    """The stored key of one entity: its key value as text, or its key columns' values joined by a unit
    separator (a character no key text holds)."""
    return str(parts[0]) if len(parts) == 1 else "\x1f".join(str(p) for p in parts)


def _q(name: str) -> str:
    # Table and column names come from validated definitions (letters, digits, underscores); quoting is for case.
    return '"' + name.replace('"', '""') + '"'


class SqliteOnlineStore:
    """One SQLite file; a connection per thread, kept open (opening one costs more than a read)."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._selects: dict[tuple[str, tuple[str, ...], int], str] = {}

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # a power cut may lose the last batch, which re-materializes
            self._local.db = db
        return db

    def has(self, table: str) -> bool:
        return self._db().execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                  (table,)).fetchone() is not None

    def write(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        """Upsert `(key, epoch, *values)` rows; a row older than the one stored for its key is ignored."""
        db = self._db()
        cols = ", ".join(_q(c) for c in columns)
        db.execute(f"CREATE TABLE IF NOT EXISTS {_q(table)} (_key TEXT PRIMARY KEY, _ts REAL NOT NULL, {cols}) "
                   "WITHOUT ROWID")
        sets = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in ["_ts", *columns])
        marks = ", ".join("?" * (len(columns) + 2))
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(f"INSERT INTO {_q(table)} VALUES ({marks}) ON CONFLICT (_key) DO UPDATE SET {sets} "
                           f"WHERE excluded._ts >= {_q(table)}._ts", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def read(self, table: str, columns: list[str], keys: Sequence[str]) -> dict[str, Row]:
        sql = self._selects.get((table, tuple(columns), len(keys)))
        if sql is None:
            cols = ", ".join(_q(c) for c in columns)
            where = "= ?" if len(keys) == 1 else f"IN ({', '.join('?' * len(keys))})"
            sql = f"SELECT _key, _ts, {cols} FROM {_q(table)} WHERE _key {where}"
            if len(self._selects) < 1024:  # the usual batch sizes; an odd one is built again
                self._selects[(table, tuple(columns), len(keys))] = sql
        try:
            rows = self._db().execute(sql, list(keys)).fetchall()
        except sqlite3.OperationalError:
            if not self.has(table):
                return {}
            raise
        return {r[0]: (r[1], list(r[2:])) for r in rows}

    def read_views(self, asks: Sequence[tuple[str, list[str], Sequence[str]]]) -> list[dict[str, Row]]:
        return [self.read(table, columns, keys) for table, columns, keys in asks]

    def drop(self, table: str) -> None:
        self._db().execute(f"DROP TABLE IF EXISTS {_q(table)}")


class RedisOnlineStore:
    """One Redis hash per view version (`<prefix><table>`), a field per entity key holding `<epoch>|<JSON list of
    the values>`, so a batch of keys is one HMGET; and the hash `<prefix>_tables` of the tables written, each with
    its columns in the order stored (a table of no rows has no hash of its own). The prefix is
    `lathe:<workspace name>:<workspace's store id>:`, so workspaces can share one Redis."""

    _BATCH = 2000  # keys per write script call: bounds the time Redis spends in one script

    def __init__(self, url: str, prefix: str):
        try:
            import redis
        except ImportError:
            raise UserError(f"the online store is set to Redis ({url}) but the `redis` package is not installed: "
                            "`pip install redis`, or remove `[features] online_store` from lathe.toml to use the "
                            "embedded store") from None
        self.url, self.prefix, self._errors = url, prefix, redis.RedisError
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5)
        self._write = self.client.register_script(_WRITE_NEWER)
        self._columns: dict[str, list[str]] = {}  # table → its stored column order, once read

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._errors as e:
            raise UserError(f"the Redis online store ({self.url}) failed while {what}: {e}; check that it is running "
                            "and reachable, or remove `[features] online_store` from lathe.toml") from None

    def _tables(self) -> str:
        return f"{self.prefix}_tables"  # table names start with a letter: no table is named this

    def has(self, table: str) -> bool:
        return bool(self._call("checking a table", lambda: self.client.hexists(self._tables(), table)))

    def write(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        """Set `(key, epoch, *values)` rows, each only where no newer row is stored for its key (checked inside
        Redis, in one script per batch, so concurrent runs cannot interleave a check and its write)."""
        for at in range(0, len(rows), self._BATCH):
            args = [x for r in rows[at:at + self._BATCH]
                    for x in (r[0], repr(float(r[1])), f"{float(r[1])!r}|{json.dumps(list(r[2:]))}")]
            self._call("writing", lambda: self._write(keys=[self.prefix + table], args=args))
        self._call("writing", lambda: self.client.hset(self._tables(), table, json.dumps(columns)))
        self._columns[table] = list(columns)

    def read(self, table: str, columns: list[str], keys: Sequence[str]) -> dict[str, Row]:
        (got,) = self.read_views([(table, columns, keys)])
        return got

    def read_views(self, asks: Sequence[tuple[str, list[str], Sequence[str]]]) -> list[dict[str, Row]]:
        """Several tables' keys in one round trip (one HMGET each)."""
        if len(asks) == 1:
            table, _, keys = asks[0]
            got = [self._call("reading", lambda: self.client.hmget(self.prefix + table, list(keys)))]
        else:
            pipe = self.client.pipeline(transaction=False)
            for table, _, keys in asks:
                pipe.hmget(self.prefix + table, list(keys))
            got = self._call("reading", pipe.execute)
        out = []
        for (table, columns, keys), values in zip(asks, got):
            stored = self._stored_columns(table)
            found: dict[str, Row] = {}
            out.append(found)
            if not stored:  # never written, or dropped: no values
                continue
            at = [stored.index(c) for c in columns]
            for k, v in zip(keys, values):
                if v is not None:
                    ts, _, packed = v.partition(b"|")
                    row = json.loads(packed)
                    found[k] = (float(ts), [row[i] for i in at])
        return out

    def _stored_columns(self, table: str) -> list[str]:
        cols = self._columns.get(table)
        if cols is None:
            got = self._call("reading", lambda: self.client.hget(self._tables(), table))
            cols = self._columns[table] = json.loads(got) if got else []
        return cols

    def drop(self, table: str) -> None:
        self._call("dropping a table", lambda: self.client.pipeline().unlink(self.prefix + table)
                   .hdel(self._tables(), table).execute())
        self._columns.pop(table, None)


# KEYS[1]: the table's hash; ARGV: per entity key its key, its epoch and its stored text (`<epoch>|<values>`).
_WRITE_NEWER = """
for i = 1, #ARGV, 3 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if (not old) or tonumber(string.match(old, '^[^|]*')) <= tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  end
end
return #ARGV / 3
"""

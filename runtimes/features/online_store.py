"""The online store: the latest value of each feature per entity key, for reads in well under a millisecond.

Embedded SQLite by default (one table per view version, keyed by the entity key; faster than DuckDB for point
reads, see docs/benchmarks.md), Redis where `[features] online_store = "redis://…"` is set in lathe.toml. It
stores what materialization hands it and never reads the warehouse.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
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


def open_online_store(ws: Workspace) -> OnlineStore:
    """The store lathe.toml configures: SQLite in the workspace unless `[features] online_store` names Redis."""
    conf = (ws.settings.model_extra or {}).get("features") or {}
    url = conf.get("online_store") if isinstance(conf, dict) else None
    if url in (None, "", "sqlite"):
        return SqliteOnlineStore(ws.root / "features" / "online.sqlite")
    if isinstance(url, str) and url.startswith(("redis://", "rediss://", "unix://")):
        return RedisOnlineStore(url, prefix=f"lathe:{ws.settings.name}:")
    raise UserError(f"{ws.settings_path}: `[features] online_store = {url!r}` is not a store: write \"sqlite\" (the "
                    "default) or a Redis URL such as \"redis://localhost:6379/0\"")


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

    def drop(self, table: str) -> None:
        self._db().execute(f"DROP TABLE IF EXISTS {_q(table)}")


class RedisOnlineStore:
    """One Redis hash per entity key (`<prefix><table>:<key>`: the field `_ts` and one JSON value per feature), and
    the set `<prefix>_tables` of the tables written. The prefix is `lathe:<workspace name>:`, so workspaces sharing
    one Redis need distinct names (or databases, the URL's `/N`)."""

    _BATCH = 1000  # keys per write script call: bounds the time Redis spends in one script

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

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._errors as e:
            raise UserError(f"the Redis online store ({self.url}) failed while {what}: {e}; check that it is running "
                            "and reachable, or remove `[features] online_store` from lathe.toml") from None

    def _tables(self) -> str:
        return f"{self.prefix}_tables"  # table names start with a letter: no table's keys can be named this

    def has(self, table: str) -> bool:
        return bool(self._call("checking a table", lambda: self.client.sismember(self._tables(), table)))

    def write(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        """Set `(key, epoch, *values)` rows, each only where no newer row is stored for its key (checked inside
        Redis, in one script per batch, so concurrent runs cannot interleave a check and its write)."""
        names = [str(len(columns)), *columns]
        for at in range(0, len(rows), self._BATCH):
            batch = rows[at:at + self._BATCH]
            args = [*names, *(x for r in batch for x in (repr(float(r[1])), *(json.dumps(v) for v in r[2:])))]
            self._call("writing", lambda: self._write(keys=[f"{self.prefix}{table}:{r[0]}" for r in batch],
                                                      args=args))
        self._call("writing", lambda: self.client.sadd(self._tables(), table))

    def read(self, table: str, columns: list[str], keys: Sequence[str]) -> dict[str, Row]:
        fields = ["_ts", *columns]
        if len(keys) == 1:  # one round trip without a pipeline's overhead
            got = [self._call("reading", lambda: self.client.hmget(f"{self.prefix}{table}:{keys[0]}", fields))]
        else:
            pipe = self.client.pipeline(transaction=False)
            for k in keys:
                pipe.hmget(f"{self.prefix}{table}:{k}", fields)
            got = self._call("reading", pipe.execute)
        return {k: (float(g[0]), [json.loads(v) if v is not None else None for v in g[1:]])
                for k, g in zip(keys, got) if g[0] is not None}

    def drop(self, table: str) -> None:
        pattern = _glob_escape(f"{self.prefix}{table}:") + "*"

        def _drop() -> None:
            batch = []
            for k in self.client.scan_iter(match=pattern, count=1000):
                batch.append(k)
                if len(batch) >= 1000:
                    self.client.unlink(*batch)
                    batch = []
            if batch:
                self.client.unlink(*batch)
            self.client.srem(self._tables(), table)

        self._call("dropping a table", _drop)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


# KEYS: the hashes; ARGV: the field count n, the n field names, then per key its epoch and n JSON values.
_WRITE_NEWER = """
local n = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local base = 1 + n + (i - 1) * (n + 1)
  local ts = ARGV[base + 1]
  local old = redis.call('HGET', key, '_ts')
  if (not old) or tonumber(old) <= tonumber(ts) then
    local args = {'_ts', ts}
    for j = 1, n do
      args[#args + 1] = ARGV[1 + j]
      args[#args + 1] = ARGV[base + 1 + j]
    end
    redis.call('HSET', key, unpack(args))
  end
end
return #KEYS
"""

"""DuckDB connections to the workspace's warehouse: a sandboxed reader and a trusted writer.

The reader is what every user- or LLM-supplied query runs on: read-only, no file system, no
extension installs, configuration locked, all by DuckDB's own settings. Connections are short-lived:
DuckDB refuses two differently configured connections to one file in one process.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from catalog.errors import UserError
from catalog.workspace import Workspace


def _offline_config(ws: Workspace) -> dict[str, object]:
    ext = ws.cache_dir / "duckdb_extensions"
    ext.mkdir(parents=True, exist_ok=True)
    sql = ws.settings.sql
    cfg: dict[str, object] = {
        # Built-in extensions only; a failed install must never write to the home directory.
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "extension_directory": str(ext),
        "memory_limit": sql.memory_limit,
    }
    if sql.threads:
        cfg["threads"] = sql.threads
    return cfg


def reader_config(ws: Workspace) -> dict[str, object]:
    return {
        **_offline_config(ws),
        "access_mode": "READ_ONLY",
        "enable_external_access": False,  # no files, no ATTACH, no COPY, no INSTALL
        "allow_persistent_secrets": False,
        "lock_configuration": True,  # SET / PRAGMA cannot undo any of the above
    }


@contextmanager
def connect_reader(ws: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    """The sandbox for untrusted SQL: read-only, no file system, settings locked."""
    ws.require()
    con = duckdb.connect(str(ws.warehouse_path), config=reader_config(ws))
    try:
        yield con
    finally:
        con.close()


@contextmanager
def connect_writer(ws: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection for Lathe's own trusted code paths (imports, demo data, approved writes)."""
    spill = ws.cache_dir / "duckdb_tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(ws.warehouse_path), config={**_offline_config(ws), "temp_directory": str(spill)})
    try:
        yield con
    finally:
        con.close()


class QueryTimeout(UserError):
    pass


def fetch_with_timeout(con: duckdb.DuckDBPyConnection, sql: str, timeout_s: float,
                       max_rows: int | None = None) -> tuple[list[str], list[tuple], bool]:
    """Run one statement; interrupt it after `timeout_s`. Returns columns, rows and whether rows were cut."""
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description] if cur.description else []
        if max_rows is None:
            rows, cut = cur.fetchall(), False
        else:
            rows = cur.fetchmany(max_rows + 1)
            cut = len(rows) > max_rows
            rows = rows[:max_rows]
        return columns, rows, cut
    except duckdb.InterruptException:
        raise QueryTimeout(f"query interrupted after {timeout_s:g} s (the [sql] timeout_s setting of lathe.toml)") from None
    finally:
        timer.cancel()

"""One change to the warehouse and the catalog together: a DuckDB transaction on the trusted writer and a staged
catalog change, committed both or neither, whatever point a crash (even SIGKILL) stops it at.

DuckDB decides: the staged change's id is written in the same DuckDB transaction as the data, so a staged change
left by a dead process is applied when the warehouse holds its id and dropped when it does not (`ledger_holds`,
asked by `CatalogStore.recover`). It decides nothing about what is written; callers do the work inside the block.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from core.errors import UserError
from catalog.store import CatalogStore, CatalogTransaction
from catalog.warehouse import connect_reader, connect_writer
from core.workspace import Workspace

_SCHEMA = "lathe_internal"  # not `main`: never listed, catalogued or queried as a table
_LEDGER = f"{_SCHEMA}.catalog_commits"
KILL_AT_ENV = "LATHE_TEST_KILL_AT"  # crash tests: the point at which this process SIGKILLs itself


def _crash_point(name: str) -> None:
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def warehouse_change(ws: Workspace) -> Iterator[tuple[Any, CatalogTransaction]]:
    """`(connection, catalog transaction)`: both commit when the block ends, neither when it raises or dies."""
    store = CatalogStore(ws)
    txn = CatalogTransaction(store)
    with connect_writer(ws) as con:
        store.recover(con)  # a change a killed process left half-way is settled before this one starts
        con.execute("BEGIN TRANSACTION")
        try:
            yield con, txn
            _crash_point("loaded")
            txn.stage(intent=True)
            _crash_point("staged")
            if txn.staging is not None:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_SCHEMA}")
                con.execute(f"CREATE TABLE IF NOT EXISTS {_LEDGER} "
                            "(staging VARCHAR PRIMARY KEY, committed_at TIMESTAMP)")
                con.execute(f"INSERT INTO {_LEDGER} VALUES (?, now())", [txn.staging.name])
            _crash_point("recorded")
            con.execute("COMMIT")
        except BaseException:
            txn.abort()
            try:
                con.execute("ROLLBACK")
            except Exception:  # duckdb.Error: the failed statement already ended the transaction
                pass
            raise
    _crash_point("committed")
    txn.apply()


def ledger_holds(ws: Workspace, staging: str, con: duckdb.DuckDBPyConnection | None = None) -> bool | None:
    """Whether the warehouse committed the change staged as `staging`; None when it cannot be asked now (another
    process holds the warehouse), and the staged change is then left for a later look."""
    try:
        if con is not None:
            return _holds(con, staging)
        with connect_reader(ws) as reader:
            return _holds(reader, staging)
    except duckdb.CatalogException:  # no ledger yet: nothing was ever committed through it
        return False
    except (duckdb.Error, OSError, UserError):  # busy, or no warehouse to ask (yet)
        return None


def _holds(con: duckdb.DuckDBPyConnection, staging: str) -> bool:
    return con.execute(f"SELECT count(*) FROM {_LEDGER} WHERE staging = ?", [staging]).fetchone()[0] > 0

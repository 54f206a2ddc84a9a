"""One change to the warehouse and the catalog together: a DuckDB transaction on the trusted writer and a staged
catalog change, committed both or neither (the catalog's commit marker makes the pair recoverable).

It decides nothing about what is written; callers do the work inside the block.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from catalog.store import CatalogStore, CatalogTransaction
from catalog.warehouse import connect_writer
from catalog.workspace import Workspace


@contextmanager
def warehouse_change(ws: Workspace) -> Iterator[tuple[Any, CatalogTransaction]]:
    """`(connection, catalog transaction)`: both commit when the block ends, neither when it raises."""
    txn = CatalogTransaction(CatalogStore(ws))
    with connect_writer(ws) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con, txn
            txn.stage()
            con.execute("COMMIT")
        except BaseException:
            txn.abort()
            try:
                con.execute("ROLLBACK")
            except Exception:  # duckdb.Error: the failed statement already ended the transaction
                pass
            raise
    txn.apply()

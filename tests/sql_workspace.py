"""A small real workspace for the SQL tests: customers with PII tags, orders, order items, numbers.

The counts are chosen so join checks have exact answers: 10 orders, 3 of them for customers that do not
exist (7, 8, 9); 12 order items over orders 1–9 (order 1 has 3, order 2 has 2), none for order 10.
"""
from __future__ import annotations

from pathlib import Path

from catalog.metadata import Column, PiiTag, Table
from catalog.store import CatalogStore
from catalog.warehouse import connect_writer
from core.workspace import Workspace

CUSTOMERS = [
    (1, "Ann Lee", "ann@example.com", "+1-555-0101", "EMEA"),
    (2, "Bo Chen", "bo@example.com", None, "NA"),
    (3, "Cy Diaz", "cy@example.com", "+1-555-0103", "APAC"),
    (4, "Di Evans", "di@example.com", "+1-555-0104", "EMEA"),
    (5, "Ed Fox", "ed@example.com", "+1-555-0105", "LATAM"),
    (6, "Flo Gray", "flo@example.com", "+1-555-0106", "NA"),
]
ORDER_CUSTOMERS = [1, 1, 2, 2, 3, 3, 4, 7, 8, 9]
ITEMS_PER_ORDER = {1: 3, 2: 2, **{o: 1 for o in range(3, 10)}}


def build_workspace(root: Path, *, row_limit: int = 1000, timeout_s: float = 30.0,
                    memory_limit: str = "1GB") -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    (root / "lathe.toml").write_text(
        f'name = "sqltest"\n\n[sql]\nrow_limit = {row_limit}\ntimeout_s = {timeout_s}\nmemory_limit = "{memory_limit}"\nthreads = 2\n',
        encoding="utf-8")
    ws = Workspace(root)
    ws.create()
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE customers (customer_id INTEGER, full_name VARCHAR, email VARCHAR, "
                    "phone VARCHAR, region VARCHAR)")
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", CUSTOMERS)
        con.execute("CREATE TABLE orders (order_id BIGINT, customer_id INTEGER, status VARCHAR)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                        [(i + 1, c, "returned" if i % 4 == 3 else "completed") for i, c in enumerate(ORDER_CUSTOMERS)])
        con.execute("CREATE TABLE order_items (order_item_id BIGINT, order_id BIGINT, amount DECIMAL(12,2))")
        items = [(order, n) for order, count in ITEMS_PER_ORDER.items() for n in range(count)]
        con.executemany("INSERT INTO order_items VALUES (?, ?, ?)",
                        [(i + 1, order, 10 * (i + 1)) for i, (order, _) in enumerate(items)])
        con.execute("CREATE TABLE numbers AS SELECT range::INTEGER AS n FROM range(3000)")
    with CatalogStore(ws).transaction() as txn:
        txn.put_table(Table(name="customers", source="demo", primary_key=["customer_id"], columns=[
            Column(name="customer_id", type="INTEGER"),
            Column(name="full_name", type="VARCHAR", pii=PiiTag.name),
            Column(name="email", type="VARCHAR", pii=PiiTag.email),
            Column(name="phone", type="VARCHAR", pii=PiiTag.phone),
            Column(name="region", type="VARCHAR"),
        ]))
        txn.put_table(Table(name="orders", source="demo", primary_key=["order_id"]))
    return ws


def write_outside_files(folder: Path) -> Path:
    """The files the hostile corpus tries to reach: a CSV, a Parquet file and another DuckDB database."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "secret.csv").write_text("password\nhunter2\n", encoding="utf-8")
    con = duckdb.connect(str(folder / "other.duckdb"))
    try:
        con.execute("CREATE TABLE orders AS SELECT 1 AS order_id")
        con.execute(f"COPY orders TO '{folder / 'secret.parquet'}' (FORMAT parquet)")
    finally:
        con.close()
    return folder

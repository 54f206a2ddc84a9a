"""A small real workspace for the agent and tool tests: customers (6), orders (12), an unrelated weather table,
their catalog entries and one `revenue` metric, with readers for the tables it holds. Holds no tests."""
from __future__ import annotations

from catalog.metadata import Column, PiiTag, Table
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader, connect_writer
from core.workspace import Workspace

REGIONS = {"EMEA": 3, "NA": 2, "APAC": 1}  # customers per region

SEMANTIC = {
    "semantic_models": [
        {"name": "orders", "model": "ref('orders')", "defaults": {"agg_time_dimension": "ordered_at"},
         "entities": [{"name": "order", "type": "primary", "expr": "order_id"},
                      {"name": "customer", "type": "foreign", "expr": "customer_id"}],
         "dimensions": [{"name": "ordered_at", "type": "time", "type_params": {"time_granularity": "day"}},
                        {"name": "status", "type": "categorical"}],
         "measures": [{"name": "revenue_amount", "agg": "sum", "expr": "amount"}]},
        {"name": "customers", "model": "ref('customers')",
         "entities": [{"name": "customer", "type": "primary", "expr": "customer_id"}],
         "dimensions": [{"name": "region", "type": "categorical"}]},
    ],
    "metrics": [{"name": "revenue", "type": "simple", "description": "Money from completed and other orders",
                 "type_params": {"measure": "revenue_amount"}}],
}


def build_small_workspace(ws: Workspace, customers_description: str = "People and companies who buy from us.") -> None:
    """customers (6), orders (12), an unrelated weather table, their catalog entries and a `revenue` metric."""
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE customers (customer_id INTEGER, full_name VARCHAR, region VARCHAR)")
        cid = 0
        for region, n in REGIONS.items():
            for _ in range(n):
                cid += 1
                con.execute("INSERT INTO customers VALUES (?, ?, ?)", [cid, f"Person {cid}", region])
        con.execute("""CREATE TABLE orders AS SELECT i AS order_id, 1 + (i % 6) AS customer_id,
                       (10 * i)::DECIMAL(10,2) AS amount, TIMESTAMP '2025-01-01' + INTERVAL (i * 10) DAY AS ordered_at,
                       CASE WHEN i % 4 = 0 THEN 'returned' ELSE 'completed' END AS status FROM range(1, 13) t(i)""")
        con.execute("CREATE TABLE weather_readings (station VARCHAR, celsius DOUBLE)")
    with CatalogStore(ws).transaction() as txn:
        txn.put_table(Table(name="customers", description=customers_description, row_count=6, columns=[
            Column(name="customer_id", type="INTEGER", description="key"),
            Column(name="full_name", type="VARCHAR", pii=PiiTag.name, description="the customer's name"),
            Column(name="region", type="VARCHAR", description="sales region", synonyms=["area"])]))
        txn.put_table(Table(name="orders", description="One row per order.", row_count=12, columns=[
            Column(name="order_id", type="BIGINT"), Column(name="customer_id", type="INTEGER"),
            Column(name="amount", type="DECIMAL(10,2)", description="order value"),
            Column(name="ordered_at", type="TIMESTAMP"), Column(name="status", type="VARCHAR")]))
        txn.put_table(Table(name="weather_readings", description="Temperatures from weather stations.", columns=[
            Column(name="station", type="VARCHAR"), Column(name="celsius", type="DOUBLE")]))
        txn.put_semantic("small", SEMANTIC)


def tables_in(ws: Workspace) -> set[str]:
    with connect_reader(ws) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def count_rows(ws: Workspace, table: str) -> int:
    with connect_reader(ws) as con:
        return len(con.table(table).fetchall())

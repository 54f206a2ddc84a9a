"""Derived tables: CTAS with metadata and column lineage in one all-or-nothing change; lineage traced through them."""
from __future__ import annotations

import json

import pytest
import sqlglot
from typer.testing import CliRunner

from catalog.column_lineage import column_lineage, trace_upstream
from catalog.derived_tables import create_derived_table
from core.errors import UserError
from catalog.metadata import PiiTag
from core.principal import Principal
from catalog.safe_sql import run_sql
from catalog.sql_guard import RefusedStatement
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from cli.main import app
from tests.sql_workspace import build_workspace

ADMIN = Principal.local_admin()
ANALYST = Principal(name="ana", roles={"analyst"})
PER_CUSTOMER = ("SELECT c.customer_id, c.email AS contact, count(o.order_id) AS n_orders, "
                "count(DISTINCT c.email) AS emails FROM customers c JOIN orders o ON o.customer_id = c.customer_id "
                "GROUP BY ALL")
TOP = "SELECT contact, n_orders * 10 AS score FROM customer_orders WHERE n_orders > 1"

SCHEMA = {"customers": {"customer_id": "INT", "email": "TEXT", "region": "TEXT"},
          "orders": {"order_id": "INT", "customer_id": "INT", "amount": "DECIMAL"}}


@pytest.mark.parametrize("sql, expected", [
    ("SELECT email AS e, upper(region) AS r FROM customers", {"e": ["customers.email"], "r": ["customers.region"]}),
    ("SELECT c.region, sum(o.amount) AS total, count(*) AS n FROM customers c JOIN orders o "
     "ON o.customer_id = c.customer_id GROUP BY 1", {"region": ["customers.region"], "total": ["orders.amount"], "n": []}),
    ("WITH t AS (SELECT customer_id AS id, amount * 2 AS twice FROM orders) SELECT id, twice FROM t",
     {"id": ["orders.customer_id"], "twice": ["orders.amount"]}),
    ("SELECT * FROM customers", {"customer_id": ["customers.customer_id"], "email": ["customers.email"],
                                 "region": ["customers.region"]}),
    ("SELECT region AS x FROM customers UNION SELECT CAST(amount AS TEXT) FROM orders",
     {"x": ["customers.region", "orders.amount"]}),
    ("SELECT coalesce(c.email, CAST(o.order_id AS TEXT)) AS k FROM customers c, orders o",
     {"k": ["customers.email", "orders.order_id"]}),
])
def test_column_lineage_of_queries(sql, expected):
    assert column_lineage(sqlglot.parse_one(sql, read="duckdb"), SCHEMA) == expected


@pytest.fixture
def ws(tmp_path):
    return build_workspace(tmp_path / "ws")


def _tables(ws) -> set[str]:
    with connect_reader(ws) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def _catalog_files(ws) -> dict[str, str]:
    return {str(p.relative_to(ws.catalog_dir)): p.read_text() for p in sorted(ws.catalog_dir.rglob("*")) if p.is_file()}


def test_derived_table_is_created_with_metadata_and_lineage(ws):
    t = create_derived_table(ws, "customer_orders", PER_CUSTOMER, principal=ADMIN, description="orders per customer")
    assert [(c.name, c.type) for c in t.columns] == [("customer_id", "INTEGER"), ("contact", "VARCHAR"),
                                                    ("n_orders", "BIGINT"), ("emails", "BIGINT")]
    assert t.row_count == 4 and t.source == "derived" and t.description == "orders per customer"
    # PII travels with the value, not with a count of it.
    assert [c.pii for c in t.columns] == [None, PiiTag.email, None, None]
    cat = CatalogStore(ws).load()
    assert cat.table("customer_orders") == t
    lineage = {x.column: x.sources for x in cat.lineage if x.table == "customer_orders"}
    assert lineage == {"customer_id": ["customers.customer_id"], "contact": ["customers.email"],
                       "n_orders": ["orders.order_id"], "emails": ["customers.email"]}
    assert all(x.sql.startswith("SELECT c.customer_id") for x in cat.lineage)
    assert run_sql(ws, "SELECT customer_id, n_orders FROM customer_orders ORDER BY 1").rows == [
        [1, 2], [2, 2], [3, 2], [4, 1]]


def test_lineage_through_a_second_derived_table(ws):
    create_derived_table(ws, "customer_orders", PER_CUSTOMER, principal=ADMIN)
    top = create_derived_table(ws, "top_customers", TOP, principal=ADMIN)
    assert top.row_count == 3 and top.column("contact").pii == PiiTag.email
    cat = CatalogStore(ws).load()
    assert trace_upstream(cat, "top_customers", "score") == {
        "column": "top_customers.score", "derived": True, "sql": TOP,
        "sources": [{"column": "customer_orders.n_orders", "derived": True,
                     "sql": cat.lineage_of("customer_orders", "n_orders")[0].sql,
                     "sources": [{"column": "orders.order_id", "derived": False, "sources": []}]}]}
    # A reader without grants sees the carried-over PII masked, two tables away from `customers.email`.
    r = run_sql(ws, "SELECT contact, score FROM top_customers ORDER BY score", principal=ANALYST)
    assert r.masked_columns == ["contact"] and {row[0] for row in r.rows} == {"****"}


def test_failing_ctas_changes_nothing(ws):
    create_derived_table(ws, "customer_orders", PER_CUSTOMER, principal=ADMIN)
    tables, files = _tables(ws), _catalog_files(ws)
    with pytest.raises(UserError, match=r"creating `broken` failed, nothing was changed: Conversion Error"):
        create_derived_table(ws, "broken", "SELECT CAST(status AS INTEGER) AS s FROM orders", principal=ADMIN)
    assert _tables(ws) == tables and _catalog_files(ws) == files
    assert not list(ws.catalog_dir.glob(".staging-*"))
    # A failing rebuild keeps the old table and its catalog entry as they were.
    with pytest.raises(UserError, match="nothing was changed"):
        create_derived_table(ws, "customer_orders", "SELECT CAST(email AS INTEGER) AS x FROM customers",
                             principal=ADMIN, replace=True)
    assert _tables(ws) == tables and _catalog_files(ws) == files
    assert run_sql(ws, "SELECT count(*) FROM customer_orders").rows == [[4]]


def test_replace_rules(ws):
    create_derived_table(ws, "customer_orders", PER_CUSTOMER, principal=ADMIN)
    with pytest.raises(UserError, match=r"`customer_orders` already exists; pass replace"):
        create_derived_table(ws, "customer_orders", PER_CUSTOMER, principal=ADMIN)
    t = create_derived_table(ws, "customer_orders", "SELECT customer_id, count(*) AS n FROM orders GROUP BY 1",
                             principal=ADMIN, replace=True)
    assert [c.name for c in t.columns] == ["customer_id", "n"] and t.row_count == 7
    cat = CatalogStore(ws).load()
    assert sorted(x.column for x in cat.lineage if x.table == "customer_orders") == ["customer_id", "n"]
    with pytest.raises(UserError, match=r"`orders` was not derived"):
        create_derived_table(ws, "orders", "SELECT 1 AS x", principal=ADMIN, replace=True)
    with pytest.raises(UserError, match="reads `customer_orders` itself"):
        create_derived_table(ws, "customer_orders", "SELECT * FROM customer_orders", principal=ADMIN, replace=True)


def test_bad_requests_are_user_errors(ws):
    files = _catalog_files(ws)
    with pytest.raises(UserError, match="not a usable table name"):
        create_derived_table(ws, "bad-name", "SELECT 1 AS x", principal=ADMIN)
    with pytest.raises(UserError, match="made from a SELECT, not from DESCRIBE"):
        create_derived_table(ws, "d", "DESCRIBE orders", principal=ADMIN)
    with pytest.raises(RefusedStatement, match="read_csv"):
        create_derived_table(ws, "d", "SELECT * FROM read_csv('/etc/passwd')", principal=ADMIN)
    with pytest.raises(UserError, match="two output columns of the same name"):
        create_derived_table(ws, "d", "SELECT a.order_id, b.order_id FROM orders a JOIN orders b USING (order_id)",
                             principal=ADMIN)
    assert _catalog_files(ws) == files and "d" not in _tables(ws)


def test_cli_derive_and_lineage(ws):
    runner = CliRunner()
    base = ["-w", str(ws.root), "catalog"]
    out = runner.invoke(app, base + ["derive", "customer_orders", PER_CUSTOMER])
    assert out.exit_code == 0, out.output
    assert "created customer_orders: 4 rows" in out.stdout and "contact VARCHAR (PII email)" in out.stdout
    out = runner.invoke(app, base + ["derive", "top_customers", TOP, "--description", "best customers"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, base + ["lineage", "top_customers.contact"])
    assert out.exit_code == 0, out.output
    lines = [line.rstrip() for line in out.stdout.splitlines()]
    assert lines[0] == "top_customers.contact"
    assert lines[1].endswith("customer_orders.contact") and lines[2].endswith("customers.email")
    out = runner.invoke(app, base + ["lineage", "top_customers.score", "--json"])
    tree = json.loads(out.stdout)
    assert tree["sources"][0]["sources"][0]["column"] == "orders.order_id"
    out = runner.invoke(app, base + ["lineage", "top_customers.scor"])
    assert out.exit_code == 2 and "did you mean `score`" in out.stderr
    out = runner.invoke(app, base + ["derive", "customer_orders", PER_CUSTOMER])
    assert out.exit_code == 2 and "already exists" in out.stderr

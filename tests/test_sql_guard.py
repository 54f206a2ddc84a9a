"""The SQL guard and DuckDB's sandbox, each on its own, against the hostile corpus; and the reads that pass."""
from __future__ import annotations

import duckdb
import pytest
import sqlglot

from core.errors import UserError
from catalog.query_schema import warehouse_catalog
from catalog.safe_sql import run_sql
from catalog.sql_guard import RefusedStatement, guard
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from tests.hostile_sql import CORPUS, Hostile
from tests.sql_workspace import build_workspace, write_outside_files


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("guard") / "ws")


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    return write_outside_files(tmp_path_factory.mktemp("outside"))


@pytest.fixture(scope="module")
def catalog(ws):
    with connect_reader(ws) as con:
        return warehouse_catalog(con, CatalogStore(ws).load())


def _sql(case: Hostile, folder) -> str:
    return case.sql.replace("{dir}", str(folder))


def _snapshot(ws) -> dict[str, int]:
    with connect_reader(ws) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables}


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: (c.dialect or "duckdb") + ": " + c.sql[:60])
def test_guard_refuses_and_names_the_statement_or_function(case, ws, outside):
    before = _snapshot(ws)
    with pytest.raises(RefusedStatement) as refused:
        run_sql(ws, _sql(case, outside), dialect=case.dialect)
    assert case.names.lower() in str(refused.value).lower(), str(refused.value)
    assert "refused" in str(refused.value)
    assert _snapshot(ws) == before
    assert not any((outside / name).exists() for name in ("out.csv", "out.parquet", "export"))


@pytest.mark.parametrize("case", [c for c in CORPUS if c.outside],
                         ids=lambda c: (c.dialect or "duckdb") + ": " + c.sql[:60])
def test_duckdb_sandbox_refuses_on_its_own(case, ws, outside):
    """The raw statement, as DuckDB would get it, sent straight to the sandboxed reader with no guard."""
    raw = _sql(case, outside)
    if case.dialect:
        try:
            raw = ";\n".join(sqlglot.transpile(raw, read=case.dialect, write="duckdb"))
        except sqlglot.errors.SqlglotError:
            pass  # the guard could not parse it either; DuckDB gets the text as written
    before = _snapshot(ws)
    with connect_reader(ws) as con, pytest.raises(duckdb.Error):
        con.execute(raw).fetchall()
    assert _snapshot(ws) == before
    assert not any((outside / name).exists() for name in ("out.csv", "out.parquet", "export"))


def test_cte_read(ws):
    r = run_sql(ws, "WITH per_order AS (SELECT order_id, count(*) AS n FROM order_items GROUP BY order_id) "
                    "SELECT n, count(*) AS orders FROM per_order GROUP BY n ORDER BY n")
    assert r.columns == ["n", "orders"]
    assert r.rows == [[1, 7], [2, 1], [3, 1]]


def test_window_function_read(ws):
    r = run_sql(ws, "SELECT order_id, amount, row_number() OVER (PARTITION BY order_id ORDER BY amount DESC) AS rk "
                    "FROM order_items WHERE order_id = 1 ORDER BY rk")
    assert [(row[0], float(row[1]), row[2]) for row in r.rows] == [(1, 30.0, 1), (1, 20.0, 2), (1, 10.0, 3)]


@pytest.mark.parametrize("op, expected", [("UNION", [[1], [2], [3], [4], [7], [8], [9]]),
                                          ("INTERSECT", [[1], [2], [3], [4]]),
                                          ("EXCEPT", [[7], [8], [9]])])
def test_set_operations(ws, op, expected):
    r = run_sql(ws, f"SELECT customer_id FROM orders {op} SELECT customer_id FROM customers WHERE customer_id < 5 "
                    "ORDER BY 1")
    assert r.rows == expected


def test_describe_show_summarize_explain(ws):
    d = run_sql(ws, "DESCRIBE orders")
    assert [row[:2] for row in d.rows] == [["order_id", "BIGINT"], ["customer_id", "INTEGER"], ["status", "VARCHAR"]]
    assert run_sql(ws, "DESCRIBE SELECT order_id * 2 AS twice FROM orders").rows[0][:2] == ["twice", "BIGINT"]
    assert ["orders"] in run_sql(ws, "SHOW TABLES").rows
    assert [row[0] for row in run_sql(ws, "SHOW order_items").rows] == ["order_item_id", "order_id", "amount"]
    s = run_sql(ws, "SUMMARIZE order_items")
    amount = next(row for row in s.rows if row[0] == "amount")
    assert amount[s.columns.index("min")] == "10.00" and amount[s.columns.index("max")] == "120.00"
    e = run_sql(ws, "EXPLAIN SELECT status FROM orders WHERE order_id > 3")
    assert e.columns[:2] == ["explain_key", "explain_value"] and "orders" in e.rows[0][1]
    a = run_sql(ws, "EXPLAIN ANALYZE SELECT count(*) FROM orders")
    assert a.sql.startswith("EXPLAIN ANALYZE SELECT") and a.rows


def test_strings_that_look_like_sql_are_data(ws):
    r = run_sql(ws, "SELECT 'DROP TABLE orders; COPY x TO ''y''' AS s, count(*) AS n FROM orders")
    assert r.rows == [["DROP TABLE orders; COPY x TO 'y'", 10]]
    assert _snapshot(ws)["orders"] == 10


def test_allowed_table_functions(ws):
    assert run_sql(ws, "SELECT sum(range) AS s FROM range(5)").rows == [[10]]
    assert run_sql(ws, "SELECT x FROM unnest([3, 1]) AS t(x) ORDER BY x").rows == [[1], [3]]


def test_other_table_functions_are_refused_by_name(ws):
    with pytest.raises(RefusedStatement, match="test_all_types"):
        run_sql(ws, "SELECT * FROM test_all_types()")


def test_snowflake_is_transpiled(ws):
    r = run_sql(ws, "SELECT customer_id, IFF(COUNT(*) > 1, 'repeat', 'once') AS kind FROM orders "
                    "GROUP BY customer_id QUALIFY ROW_NUMBER() OVER (ORDER BY customer_id) <= 2 ORDER BY customer_id",
                dialect="snowflake")
    assert r.rows == [[1, "repeat"], [2, "repeat"]]
    assert "CASE WHEN" in r.sql and "IFF" not in r.sql


def test_bigquery_is_transpiled(ws):
    r = run_sql(ws, "SELECT SAFE_DIVIDE(SUM(amount), COUNT(*)) AS avg_amount, "
                    "COUNTIF(amount > 100) AS big FROM `order_items`", dialect="bigquery")
    assert [float(r.rows[0][0]), r.rows[0][1]] == [65.0, 2]


def test_postgres_is_transpiled(ws):
    r = run_sql(ws, "SELECT full_name FROM customers WHERE region ILIKE 'emea' AND customer_id::text = '4'",
                dialect="postgres")
    assert r.rows == [["Di Evans"]]


def test_unknown_names_get_suggestions(ws):
    with pytest.raises(UserError, match=r"no table `ordrs`; did you mean `orders`"):
        run_sql(ws, "SELECT * FROM ordrs")
    with pytest.raises(UserError, match=r"no column `emial`; did you mean `email`"):
        run_sql(ws, "SELECT emial FROM customers")
    with pytest.raises(UserError, match=r"no column `amout` in table `order_items`; did you mean `amount`"):
        run_sql(ws, "SELECT i.amout FROM order_items AS i")
    with pytest.raises(UserError, match=r"no table or alias `o` .*known: `i`"):
        run_sql(ws, "SELECT o.order_id FROM order_items AS i")
    with pytest.raises(UserError, match=r"no column `totl` in `t`; did you mean `total`"):
        run_sql(ws, "SELECT t.totl FROM (SELECT sum(amount) AS total FROM order_items) AS t")
    with pytest.raises(UserError, match=r"no SQL dialect `snowflak`; did you mean `snowflake`"):
        run_sql(ws, "SELECT 1", dialect="snowflak")


def test_syntax_errors_are_user_errors(ws):
    with pytest.raises(UserError, match="does not parse"):
        run_sql(ws, "SELECT FROM WHERE (")
    with pytest.raises(UserError, match="no SQL"):
        run_sql(ws, "  ")
    with pytest.raises(UserError, match="only comments"):
        run_sql(ws, "-- nothing here")


def test_guard_reports_what_a_query_reads(catalog):
    g = guard("SELECT c.region, sum(i.amount) FROM customers c JOIN orders o ON o.customer_id = c.customer_id "
              "JOIN order_items i ON i.order_id = o.order_id GROUP BY 1", None, catalog)
    assert g.kind == "SELECT"
    assert g.tables == {"customers", "orders", "order_items"}
    assert g.columns == {"customers.region", "customers.customer_id", "orders.customer_id", "orders.order_id",
                         "order_items.amount", "order_items.order_id"}
    assert g.sql.startswith("SELECT c.region")


@pytest.mark.parametrize("sql, kind", [("SELECT 1 UNION ALL SELECT 2", "UNION"), ("DESCRIBE orders", "DESCRIBE"),
                                       ("SHOW orders", "DESCRIBE"), ("SHOW TABLES", "SHOW"),
                                       ("SUMMARIZE orders", "SUMMARIZE"), ("EXPLAIN SELECT 1", "EXPLAIN"),
                                       ("FROM orders", "SELECT")])
def test_guard_kinds(catalog, sql, kind):
    assert guard(sql, None, catalog).kind == kind

"""`run_sql` end to end on a real warehouse: PII masking, join warnings, row limit, timeout and `lathe sql`."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from core.errors import UserError
from catalog.join_checks import join_warnings
from core.principal import Principal
from catalog.query_schema import warehouse_catalog
from catalog.safe_sql import run_sql
from catalog.sql_guard import guard
from catalog.store import CatalogStore
from catalog.warehouse import QueryTimeout, connect_reader
from cli.main import app
from tests.sql_workspace import CUSTOMERS, build_workspace

ANALYST = Principal(name="ana", roles={"analyst"})
MASK = "****"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("safe") / "ws")


# ---- PII -------------------------------------------------------------------------------------------


def test_select_star_masks_pii_columns_without_grants(ws):
    r = run_sql(ws, "SELECT * FROM customers ORDER BY customer_id", principal=ANALYST)
    assert r.columns == ["customer_id", "full_name", "email", "phone", "region"]
    assert r.masked_columns == ["full_name", "email", "phone"]
    assert r.rows[0] == [1, MASK, MASK, MASK, "EMEA"]
    assert r.rows[1] == [2, MASK, MASK, None, "NA"]  # a missing phone stays visibly missing
    assert any("customers.email" in w for w in r.warnings)
    assert not any("@example.com" in str(v) for row in r.rows for v in row)


@pytest.mark.parametrize("grants, visible", [
    ({"pii:email"}, {"email"}),
    ({"pii:customers.phone"}, {"phone"}),
    ({"pii:name", "pii:email"}, {"full_name", "email"}),
    ({"pii"}, {"full_name", "email", "phone"}),
])
def test_grants_unmask_what_they_name(ws, grants, visible):
    who = Principal(name="gus", roles={"analyst"}, grants=grants)
    r = run_sql(ws, "SELECT customer_id, full_name, email, phone FROM customers WHERE customer_id = 1", principal=who)
    expected = dict(zip(["full_name", "email", "phone"], CUSTOMERS[0][1:4]))
    assert r.rows == [[1] + [expected[c] if c in visible else MASK for c in ("full_name", "email", "phone")]]
    assert set(r.masked_columns) == {"full_name", "email", "phone"} - visible


def test_admin_and_default_principal_see_everything(ws):
    for who in (None, Principal.local_admin()):
        r = run_sql(ws, "SELECT email FROM customers WHERE customer_id = 3", principal=who)
        assert r.rows == [["cy@example.com"]] and r.masked_columns == []


def test_counts_of_pii_are_not_masked(ws):
    r = run_sql(ws, "SELECT region, count(email) AS emails, count(DISTINCT full_name) AS names, "
                    "count(*) FILTER (WHERE phone IS NOT NULL) AS phones FROM customers GROUP BY region ORDER BY region",
                principal=ANALYST)
    assert r.masked_columns == []
    assert r.rows == [["APAC", 1, 1, 1], ["EMEA", 2, 2, 2], ["LATAM", 1, 1, 1], ["NA", 2, 2, 1]]


@pytest.mark.parametrize("sql, masked", [
    ("SELECT upper(email) AS shout, region FROM customers", ["shout"]),
    ("SELECT max(email) AS m, count(*) AS n FROM customers", ["m"]),
    ("WITH c AS (SELECT email AS e, customer_id FROM customers) SELECT e, customer_id FROM c", ["e"]),
    ("SELECT s.contact FROM (SELECT full_name AS contact FROM customers) AS s", ["contact"]),
    ("SELECT email FROM customers UNION ALL SELECT status FROM orders", ["email"]),
    ("SELECT lag(phone) OVER (ORDER BY customer_id) AS prev FROM customers", ["prev"]),
    ("SELECT {'who': full_name} AS packed FROM customers", ["packed"]),
    ("SELECT (SELECT string_agg(email, ',') FROM customers) AS everyone", ["everyone"]),
    ("SELECT x FROM unnest((SELECT list(email) FROM customers)) AS t(x)", ["x"]),
    ("SELECT o.order_id, c.email FROM orders o JOIN customers c ON c.customer_id = o.customer_id", ["email"]),
])
def test_values_computed_from_pii_are_masked(ws, sql, masked):
    r = run_sql(ws, sql, principal=ANALYST)
    assert r.masked_columns == masked
    for name in masked:
        i = r.columns.index(name)
        assert {row[i] for row in r.rows} <= {MASK, None}


def test_filtering_on_pii_sees_only_masked_values(ws):
    sql = "SELECT customer_id, region FROM customers WHERE email LIKE 'd%'"
    r = run_sql(ws, sql, principal=ANALYST)
    assert r.rows == [] and r.masked_columns == []
    granted = Principal(name="gus", roles={"analyst"}, grants={"pii:email"})
    assert run_sql(ws, sql, principal=granted).rows == [[4, "EMEA"]]


def test_summarize_hides_pii_values(ws):
    r = run_sql(ws, "SUMMARIZE customers", principal=ANALYST)
    by_column = {row[0]: dict(zip(r.columns, row)) for row in r.rows}
    assert by_column["email"]["min"] is None and by_column["email"]["max"] is None
    assert by_column["region"]["min"] == "APAC"
    assert r.masked_columns == ["full_name", "email", "phone"]


def test_whole_row_references_are_refused(ws):
    with pytest.raises(UserError, match="whole row"):
        run_sql(ws, "SELECT c FROM customers AS c", principal=ANALYST)
    with pytest.raises(UserError, match="COLUMNS"):
        run_sql(ws, "SELECT COLUMNS('e.*') FROM customers", principal=ANALYST)


def test_errors_do_not_quote_hidden_values(ws):
    with pytest.raises(UserError) as hidden:
        run_sql(ws, "SELECT CAST(email AS INTEGER) FROM customers", principal=ANALYST)
    assert "example.com" not in str(hidden.value) and "withheld" in str(hidden.value)
    with pytest.raises(UserError, match="ann@example.com"):  # the admin gets DuckDB's full message
        run_sql(ws, "SELECT CAST(email AS INTEGER) FROM customers")


# ---- join checks -----------------------------------------------------------------------------------


def test_join_that_multiplies_and_drops_rows_is_reported_with_counts(ws):
    r = run_sql(ws, "SELECT o.order_id, i.amount FROM orders o JOIN order_items i ON i.order_id = o.order_id")
    assert len(r.rows) == 12
    assert "join of orders to order_items multiplies rows: 10 → 12 (order_items.order_id is not unique)" in r.warnings
    assert "inner join drops 1 of 10 rows of orders that have no match in order_items" in r.warnings


def test_join_that_drops_rows_is_reported(ws):
    r = run_sql(ws, "SELECT o.order_id, c.region FROM orders o JOIN customers c ON c.customer_id = o.customer_id")
    assert r.warnings == ["inner join drops 3 of 10 rows of orders that have no match in customers"]


def test_clean_joins_and_plain_queries_get_no_warnings(ws):
    assert run_sql(ws, "SELECT o.order_id, c.region FROM orders o LEFT JOIN customers c "
                       "ON c.customer_id = o.customer_id").warnings == []
    assert run_sql(ws, "SELECT count(*) FROM order_items").warnings == []


def test_left_join_that_multiplies_and_chained_joins(ws):
    r = run_sql(ws, "SELECT c.customer_id, o.order_id, i.order_item_id FROM customers c "
                    "LEFT JOIN orders o ON o.customer_id = c.customer_id "
                    "LEFT JOIN order_items i ON i.order_id = o.order_id")
    assert r.warnings == [
        "join of customers to orders multiplies rows: 6 → 9 (orders.customer_id is not unique)",
        "join of orders to order_items multiplies rows: 9 → 12 (order_items.order_id is not unique)",
    ]


def test_join_checks_inside_a_cte(ws):
    r = run_sql(ws, "WITH per AS (SELECT c.region, o.order_id FROM customers c JOIN orders o "
                    "ON o.customer_id = c.customer_id) SELECT region, count(*) AS n FROM per GROUP BY region ORDER BY 1")
    assert r.rows == [["APAC", 2], ["EMEA", 3], ["NA", 2]]
    assert r.warnings == ["join of customers to orders multiplies rows: 6 → 7 (orders.customer_id is not unique)",
                          "inner join drops 2 of 6 rows of customers that have no match in orders"]


def test_join_checks_skip_past_the_size_limit(ws):
    with connect_reader(ws) as con:
        cat = warehouse_catalog(con, CatalogStore(ws).load())
        g = guard("SELECT * FROM orders o JOIN order_items i ON i.order_id = o.order_id", None, cat)
        notes = join_warnings(con, g.query, g.tables, timeout_s=5, max_rows=20)
    assert notes == ["join checks skipped: the tables read hold 22 rows, more than the 20 they count"]


# ---- limits ----------------------------------------------------------------------------------------


def test_row_limit_from_settings_and_lowered_by_argument(tmp_path):
    small = build_workspace(tmp_path / "ws", row_limit=5)
    r = run_sql(small, "SELECT order_item_id FROM order_items ORDER BY order_item_id")
    assert r.rows == [[1], [2], [3], [4], [5]] and r.truncated
    assert "only the first 5 rows are shown ([sql] row_limit in lathe.toml)" in r.warnings
    r = run_sql(small, "SELECT order_item_id FROM order_items ORDER BY order_item_id", limit=2)
    assert r.rows == [[1], [2]] and r.truncated
    assert run_sql(small, "SELECT order_item_id FROM order_items", limit=500).rows.__len__() == 5
    r = run_sql(small, "SELECT order_item_id FROM order_items WHERE order_item_id <= 5")
    assert len(r.rows) == 5 and not r.truncated
    with pytest.raises(UserError, match="at least 1"):
        run_sql(small, "SELECT 1", limit=0)


def test_slow_cross_join_is_interrupted(tmp_path):
    slow = build_workspace(tmp_path / "ws", timeout_s=0.5)
    with pytest.raises(QueryTimeout, match=r"interrupted after 0.5 s"):
        run_sql(slow, "SELECT count(*) FROM numbers a, numbers b, numbers c WHERE (a.n * 7 + b.n * 3 + c.n) % 11 = 4")
    assert run_sql(slow, "SELECT count(*) FROM numbers").rows == [[3000]]  # the warehouse is still usable


# ---- the CLI ---------------------------------------------------------------------------------------


def test_cli_sql_json(ws):
    out = CliRunner().invoke(app, ["-w", str(ws.root), "sql", "SELECT region, count(*) AS n FROM customers "
                                                             "GROUP BY region ORDER BY region", "--json", "--limit", "2"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["columns"] == ["region", "n"] and data["rows"] == [["APAC", 1], ["EMEA", 2]]
    assert data["truncated"] is True and data["sql"].startswith("SELECT region")


def test_cli_sql_table_and_dialect(ws):
    out = CliRunner().invoke(app, ["-w", str(ws.root), "sql", "SELECT IFF(customer_id = 1, 'one', 'other') AS k "
                                                             "FROM customers WHERE customer_id = 1", "-d", "snowflake"])
    assert out.exit_code == 0, out.output
    assert "one" in out.stdout


def test_cli_sql_refusal_is_one_line(ws):
    out = CliRunner().invoke(app, ["-w", str(ws.root), "sql", "DROP TABLE orders"])
    assert out.exit_code == 2
    assert out.stderr.startswith("error: DROP refused:") and out.stderr.count("\n") == 1

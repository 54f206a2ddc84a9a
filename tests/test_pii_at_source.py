"""PII masked where it enters the query: attacks as a principal without the grant, a random-composition
property test, derived tables' tags, and the metric path."""
from __future__ import annotations

import random

import pytest

from core.errors import UserError
from core.principal import Principal
from catalog.safe_sql import run_sql
from tests.hostile_sql import PII_ATTACKS, PiiAttack
from tests.sql_workspace import CUSTOMERS, build_workspace

ANALYST = Principal(name="ana", roles={"analyst"})
RAW = {v for row in CUSTOMERS for v in row[1:4] if v is not None}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("pii") / "ws")


def _leaks(rows: list[list]) -> list[str]:
    """Cells that hold a raw PII value or a run of one (the raw value inside a longer text)."""
    out = []
    for row in rows:
        for cell in row:
            text = str(cell)
            if any(raw in text for raw in RAW):
                out.append(text)
    return out


@pytest.mark.parametrize("case", PII_ATTACKS, ids=lambda c: c.sql[:70])
def test_attack_as_principal_without_grant(ws, case: PiiAttack):
    if case.rows is None and not case.any_answer:
        with pytest.raises(UserError) as refused:
            run_sql(ws, case.sql, principal=ANALYST)
        assert not any(raw in str(refused.value) for raw in RAW)
        return
    try:
        r = run_sql(ws, case.sql, principal=ANALYST)
    except UserError as refused:
        assert case.any_answer, f"refused: {refused}"
        assert not any(raw in str(refused) for raw in RAW)
        return
    assert not _leaks(r.rows), r.rows
    assert not any(raw in r.sql for raw in RAW - {"ann@example.com", "bo@example.com", "Ann Lee"})
    if not case.any_answer:
        assert r.rows == case.rows


def test_the_same_attacks_see_raw_values_with_the_grant(ws):
    granted = Principal(name="gus", roles={"analyst"}, grants={"pii"})
    assert run_sql(ws, "SELECT count(*) AS n FROM customers WHERE email LIKE 'a%'", principal=granted).rows == [[1]]
    assert run_sql(ws, "SELECT count(*) AS n FROM customers WHERE email < 'c'", principal=granted).rows == [[2]]


def test_one_grant_unmasks_only_its_column_in_predicates(ws):
    email_only = Principal(name="gus", roles={"analyst"}, grants={"pii:email"})
    sql = ("SELECT count(*) FILTER (WHERE email LIKE 'a%') AS e, count(*) FILTER (WHERE full_name LIKE 'A%') AS f "
           "FROM customers")
    assert run_sql(ws, sql, principal=email_only).rows == [[1, 0]]


# ---- property: random compositions never return a raw value -----------------------------------------

_COLS = ["email", "full_name", "phone", "region", "CAST(customer_id AS VARCHAR)"]
_PII = ["email", "full_name", "phone"]
_WRAPS = ["{c}", "upper({c})", "lower({c})", "substr({c}, 1, 3)", "{c} || ''", "trim({c})", "reverse({c})",
          "replace({c}, '@', '#')", "concat({c}, '!')", "left({c}, 4)", "coalesce({c}, 'none')",
          "regexp_replace({c}, '[aeiou]', '_', 'g')", "split_part({c}, '@', 1)", "md5({c})", "CAST({c} AS VARCHAR)"]
_AGGS = ["min({e})", "max({e})", "string_agg({e}, ',')", "first({e})", "arg_max({e}, customer_id)",
         "list({e})[1]", "any_value({e})", "mode({e})"]
_PREDS = ["{e} LIKE 'a%'", "{e} > 'c'", "{e} IS NOT NULL", "length({e}) > 3", "{e} = 'ann@example.com'",
          "contains({e}, 'e')", "customer_id < 4", "region = 'EMEA'"]


def _expr(rng: random.Random) -> str:
    out = rng.choice(_COLS if rng.random() < 0.4 else _PII)
    for _ in range(rng.randint(1, 3)):  # functions nested up to three deep
        out = rng.choice(_WRAPS).format(c=out)
    return out


def _query(rng: random.Random) -> str:
    shape = rng.randrange(11)
    e, p = _expr(rng), rng.choice(_PREDS).format(e=_expr(rng))
    if shape == 0:
        return f"SELECT {e} AS v FROM customers WHERE {p}"
    if shape == 1:
        return f"SELECT region, {rng.choice(_AGGS).format(e=e)} AS v FROM customers GROUP BY region"
    if shape == 2:
        return f"WITH t AS (SELECT customer_id, {e} AS v FROM customers) SELECT v FROM t ORDER BY v LIMIT 2"
    if shape == 3:
        return f"SELECT {e} AS v FROM customers UNION ALL SELECT status FROM orders"
    if shape == 4:
        return f"SELECT v FROM (SELECT {e} AS v FROM customers) s WHERE {rng.choice(_PREDS[:6]).format(e='v')}"
    if shape == 5:
        return (f"SELECT o.order_id, {e.replace('customer_id', 'c.customer_id')} AS v FROM orders o "
                f"JOIN customers c ON c.customer_id = o.customer_id")
    if shape == 6:
        return f"SELECT customer_id, lag({e}) OVER (ORDER BY {_expr(rng)}) AS v FROM customers"
    if shape == 7:
        return f"SELECT x FROM unnest((SELECT list({e}) FROM customers WHERE {p})) AS t(x)"
    if shape == 8:
        return (f"SELECT region, {rng.choice(_AGGS).format(e=e)} AS v FROM customers GROUP BY region "
                f"HAVING count(*) FILTER (WHERE {p}) >= 0 ORDER BY v DESC LIMIT 2")
    if shape == 9:
        return f"SELECT DISTINCT CASE WHEN {p} THEN {e} ELSE region END AS v FROM customers QUALIFY count(*) OVER () > 0"
    return f"SELECT {e} AS v FROM customers INTERSECT SELECT {e} AS v FROM customers WHERE {p}"


@pytest.mark.slow
def test_random_compositions_never_return_a_raw_value(ws):
    """The same steps as `run_sql` (guard, mask, run), on one sandboxed connection so 300 queries take seconds."""
    from catalog.pii_masking import mask_pii
    from catalog.query_schema import warehouse_catalog
    from catalog.sql_guard import guard
    from catalog.store import CatalogStore
    from catalog.warehouse import connect_reader

    rng = random.Random(11)
    ran = refused = 0
    with connect_reader(ws) as con:
        tables = warehouse_catalog(con, CatalogStore(ws).load())
        for _ in range(300):
            sql = _query(rng)
            try:
                masked = mask_pii(con, guard(sql, None, tables), tables, ANALYST)
            except UserError as e:
                refused += 1
                assert not any(raw in str(e) for raw in RAW), (sql, str(e))
                continue
            rows = con.execute(masked.tree.sql(dialect="duckdb")).fetchall()
            ran += 1
            assert not _leaks([list(r) for r in rows]), (sql, rows)
    assert ran >= 250, f"only {ran} of 300 ran ({refused} refused)"


# ---- derived tables ---------------------------------------------------------------------------------


@pytest.fixture
def fresh(tmp_path):
    return build_workspace(tmp_path / "ws")


@pytest.mark.parametrize("sql", [
    "SELECT unnest(list(email)) AS e FROM customers",
    "SELECT x AS e FROM unnest((SELECT list(email) FROM customers)) AS t(x)",
    "SELECT * LIKE 'e%' FROM customers",
    "SELECT * SIMILAR TO 'em.*' FROM customers",
    "SELECT list(email)[1] AS e FROM customers",
])
def test_derived_copies_of_pii_are_tagged_or_refused(fresh, sql):
    from catalog.derived_tables import create_derived_table
    from catalog.store import CatalogStore

    try:
        table = create_derived_table(fresh, "copy", sql, principal=Principal.local_admin())
    except UserError:
        assert CatalogStore(fresh).load().table("copy") is None
        return
    assert all(c.pii is not None for c in table.columns), [(c.name, c.pii) for c in table.columns]
    r = run_sql(fresh, "SELECT * FROM copy", principal=ANALYST)
    assert not _leaks(r.rows)


# ---- the metric path ---------------------------------------------------------------------------------


def test_mask_at_source_is_one_function_for_every_path(ws):
    import sqlglot

    from catalog.pii_masking import mask_at_source
    from catalog.query_schema import warehouse_catalog
    from catalog.store import CatalogStore
    from catalog.warehouse import connect_reader

    with connect_reader(ws) as con:
        catalog = warehouse_catalog(con, CatalogStore(ws).load())
        tree = sqlglot.parse_one("SELECT count(*) AS n FROM customers AS c WHERE c.email LIKE 'a%'", read="duckdb")
        masked = mask_at_source(tree, ANALYST, catalog)
        assert con.execute(masked.sql(dialect="duckdb")).fetchall() == [(0,)]
        assert mask_at_source(tree, Principal.local_admin(), catalog).sql() == tree.sql()


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    import shutil
    from pathlib import Path

    from catalog.metadata import Column, PiiTag, Table
    from catalog.store import CatalogStore
    from catalog.warehouse import connect_writer
    from core.workspace import Workspace

    folder = Path(__file__).parent / "fixtures" / "semantic_shop"
    ws = Workspace(tmp_path_factory.mktemp("shop_pii") / "ws")
    ws.create()
    with connect_writer(ws) as con:
        con.execute((folder / "data.sql").read_text())
    shutil.copy(folder / "shop.yml", ws.catalog_dir / "semantic" / "shop.yml")
    with CatalogStore(ws).transaction() as txn:  # the region stands in for a PII column here
        txn.put_table(Table(name="customers", columns=[Column(name="customer_id"), Column(name="full_name"),
                                                       Column(name="region", pii=PiiTag.address)]))
    return ws


def test_metric_path_masks_at_the_source(shop):
    from catalog.semantic.query import MetricQuery
    from catalog.semantic.runner import run_metric_query
    from tools.query_metrics import QueryMetrics

    by_region = MetricQuery(metrics=["revenue"], group_by=["customer__region"])
    admin = run_metric_query(shop, by_region)
    assert {r[0] for r in admin.rows} >= {"NA", "EMEA"}
    masked = run_metric_query(shop, by_region, ANALYST)
    assert sorted(r[1] for r in masked.rows) == sorted(r[1] for r in admin.rows)  # same groups, same sums
    assert all(r[0] is None or str(r[0]).startswith("****") for r in masked.rows)
    filtered = MetricQuery(metrics=["revenue"], where=["{{ Dimension('customer__region') }} = 'NA'"])
    assert run_metric_query(shop, filtered).rows[0][0] == 355.0
    assert run_metric_query(shop, filtered, ANALYST).rows[0][0] is None
    tool = QueryMetrics(workspace=shop, principal=ANALYST)
    out = tool._run(metrics=["revenue"], group_by=["customer__region"])
    assert not any(r[0] in ("NA", "EMEA") for r in out.result.rows)


@pytest.mark.parametrize("where", [
    "{{ Dimension('customer__region') }} IN (SELECT name FROM pg_settings)",
    "{{ Dimension('customer__region') }} IN (WITH pg_settings AS (SELECT 1 AS x) SELECT name FROM pg_settings)",
    "current_setting('home_directory') IS NOT NULL",
    "{{ Dimension('customer__region') }} IN (SELECT * FROM query('SELECT region FROM customers'))",
    "(SELECT count(*) FROM read_csv('/etc/hostname')) > 0",
    "(SELECT count(*) FROM duckdb_settings()) > 0",
    "{{ Dimension('customer__region') }} = getenv('HOME')",
])
def test_metric_filters_pass_the_same_guard(shop, where):
    from catalog.semantic.query import MetricQuery
    from catalog.semantic.runner import run_metric_query

    with pytest.raises(UserError):
        run_metric_query(shop, MetricQuery(metrics=["revenue"], where=[where]))


def test_a_metric_filter_subquery_over_pii_is_refused_for_everyone(shop):
    from catalog.semantic.query import MetricQuery
    from catalog.semantic.runner import run_metric_query

    q = MetricQuery(metrics=["revenue"], where=[
        "{{ Dimension('customer__region') }} IN (SELECT region FROM customers WHERE email LIKE 'a%')"])
    for principal in (None, ANALYST):  # a filter is one condition over the model's columns: never a query
        with pytest.raises(UserError, match="a query is not allowed"):
            run_metric_query(shop, q, principal)

"""The semantic layer on MetricFlow's own tutorial project (shipped in the dbt-metricflow package): its seeds
loaded into a workspace, its YAML copied as is, every metric checked against hand-written SQL, per group.
"""
from __future__ import annotations

import decimal
import shutil

import pytest

from catalog.semantic.query import MetricQuery
from catalog.semantic.runner import run_metric_query
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader, connect_writer
from core.workspace import Workspace
from tests.conftest import external

TABLES = ("transactions", "customers", "countries")


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory) -> Workspace:
    project = external("mf_tutorial")
    ws = Workspace(tmp_path_factory.mktemp("tutorial") / "ws")
    ws.create()
    with connect_writer(ws) as con:
        for name in TABLES:
            con.read_csv(str(project / "seeds" / f"{name}_seed.csv")).create(name)
    for f in (project / "sample_models").glob("*.yml"):
        shutil.copy(f, ws.catalog_dir / "semantic" / f.name)
    return ws


# Each metric as SQL over `t` (transactions) joined to `c` (customers) and `k` (countries): its value, and
# the condition its rows must meet.
_TYPE = "t.transaction_type_name"
_AMOUNT = {kind: f"sum(CASE WHEN {_TYPE} = '{kind}' THEN t.transaction_amount_usd ELSE 0 END)"
           for kind in ("quick-buy", "cancellation", "alteration")}
TRANSACTION_METRICS = {
    "transactions": ("count(*)", "true"),
    "transaction_amount": ("sum(t.transaction_amount_usd)", "true"),
    "quick_buy_transactions": (f"sum(CASE WHEN {_TYPE} = 'quick-buy' THEN 1 ELSE 0 END)", "true"),
    "quick_buy_amount_usd": (_AMOUNT["quick-buy"], "true"),
    "cancellations": (_AMOUNT["cancellation"], "true"),
    "alterations": (_AMOUNT["alteration"], "true"),
    "cancellation_rate": (f"{_AMOUNT['cancellation']} / sum(t.transaction_amount_usd)", "true"),
    "revenue_usd": (f"sum(t.transaction_amount_usd) - {_AMOUNT['cancellation']} + {_AMOUNT['alteration']}", "true"),
    "cancellations_mx": (_AMOUNT["cancellation"], "c.country = 'MX'"),
    "transaction_usd_na": ("sum(t.transaction_amount_usd)", "k.region = 'NA'"),
}
GROUPS = {
    "metric_time__day": "date_trunc('day', {time})",
    "metric_time__month": "date_trunc('month', {time})",
    "customer__country__region": "k.region",
    "customer__customer_country": "c.country",
}


def _plain(rows):
    def value(v):
        return round(float(v), 6) if isinstance(v, (float, decimal.Decimal)) else v

    return sorted((tuple(value(v) for v in r) for r in rows), key=repr)


def semantic(ws, metric, group):
    res = run_metric_query(ws, MetricQuery(metrics=[metric], group_by=[group]))
    assert res.columns == [group, metric]
    return _plain(res.rows)


def hand(ws, sql):
    with connect_reader(ws) as con:
        return _plain(con.execute(sql).fetchall())


def test_the_project_loads_as_it_is(tutorial):
    m = CatalogStore(tutorial).load_semantic()
    assert {sm.name for sm in m.semantic_models} == {"transactions", "customers", "countries"}
    assert len(m.metrics) == 13


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("metric", list(TRANSACTION_METRICS))
def test_transaction_metrics_match_hand_written_sql(tutorial, metric, group):
    value, where = TRANSACTION_METRICS[metric]
    key = GROUPS[group].format(time="t.ds")
    expect = hand(tutorial, f"""
        SELECT {key}, {value}
        FROM transactions t
        LEFT JOIN customers c ON c.id_customer = t.id_customer
        LEFT JOIN countries k ON k.country = c.country
        WHERE {where}
        GROUP BY 1""")
    assert expect, "the hand-written query found rows"
    assert semantic(tutorial, metric, group) == expect


@pytest.mark.parametrize("group", list(GROUPS))
def test_new_customers_from_the_customers_model(tutorial, group):
    key = GROUPS[group].format(time="c.ds")
    expect = hand(tutorial, f"""
        SELECT {key}, count(*) FROM customers c LEFT JOIN countries k ON k.country = c.country GROUP BY 1""")
    assert semantic(tutorial, "new_customers", group) == expect


def test_metrics_of_two_models_together(tutorial):
    res = run_metric_query(tutorial, MetricQuery(metrics=["transactions", "new_customers"],
                                                 group_by=["customer__customer_country"]))
    expect = hand(tutorial, """
        WITH t AS (SELECT c.country, count(*) AS n FROM transactions t
                   LEFT JOIN customers c ON c.id_customer = t.id_customer GROUP BY 1),
             c AS (SELECT country, count(*) AS n FROM customers GROUP BY 1)
        SELECT coalesce(t.country, c.country), t.n, c.n FROM t FULL JOIN c ON c.country = t.country""")
    assert _plain(res.rows) == expect


CUMULATIVE = """
WITH daily AS (SELECT date_trunc('day', ds) AS d, count(*) AS n FROM transactions GROUP BY 1),
     cal AS (SELECT unnest(generate_series(min(d), max(d), INTERVAL 1 DAY)) AS d FROM daily),
     w AS (SELECT cal.d, sum(daily.n) OVER win AS n FROM cal LEFT JOIN daily ON daily.d = cal.d
           WINDOW win AS ({window}))
SELECT d, n FROM w WHERE n > 0
"""


def test_cumulative_metrics_by_day(tutorial):
    assert semantic(tutorial, "cumulative_transactions", "metric_time__day") == hand(
        tutorial, CUMULATIVE.format(window="ORDER BY cal.d"))
    assert semantic(tutorial, "cumulative_transactions_in_last_7_days", "metric_time__day") == hand(
        tutorial, CUMULATIVE.format(window="ORDER BY cal.d ROWS BETWEEN 6 PRECEDING AND CURRENT ROW"))


def test_cumulative_metric_by_month_takes_each_month_first_day(tutorial):
    expect = hand(tutorial, f"""
        WITH r AS ({CUMULATIVE.format(window="ORDER BY cal.d")})
        SELECT date_trunc('month', d), arg_min(n, d) FROM r GROUP BY 1""")
    assert semantic(tutorial, "cumulative_transactions", "metric_time__month") == expect


def test_the_saved_queries_of_the_project_run(tutorial):
    # saved_queries.yml: core_transaction_metrics, in MetricFlow's own group-by spelling
    res = run_metric_query(tutorial, MetricQuery(
        metrics=["transactions", "quick_buy_transactions"],
        group_by=["TimeDimension('metric_time', 'day')", "Dimension('customer__customer_country')"]))
    assert res.columns == ["metric_time__day", "customer__customer_country", "transactions", "quick_buy_transactions"]
    assert sum(r[2] for r in res.rows) == 50

"""The semantic-layer compiler on a small hand-made shop (tests/fixtures/semantic_shop): joins that never
double-count, ratio, derived and offset metrics, cumulative windows, percentiles, filters and errors.

The shop is small enough that the expected numbers are worked out by hand; time-window metrics are also
checked against independent hand-written SQL (window functions over a calendar).
"""
from __future__ import annotations

import datetime as dt
import decimal
import shutil

import numpy as np
import pytest
from sqlglot import exp

from core.errors import UserError
from catalog.semantic.compiler import compile_query, dimensions_for
from catalog.semantic.query import MetricQuery
from catalog.semantic.runner import run_metric_query
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader, connect_writer
from core.workspace import Workspace

from tests.semantic_shop import SHOP, build_shop
D = dt.datetime


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Workspace:
    return build_shop(tmp_path_factory.mktemp("shop"))


@pytest.fixture(scope="module")
def manifest(shop):
    return CatalogStore(shop).load_semantic()


def _plain(v):
    return round(float(v), 6) if isinstance(v, (float, decimal.Decimal)) else v


def rows(ws: Workspace, metrics: list[str], **kw) -> list[tuple]:
    res = run_metric_query(ws, MetricQuery(metrics=metrics, **kw))
    assert res.columns == [*kw.get("group_by", []), *metrics]
    return [tuple(_plain(v) for v in r) for r in res.rows]


def hand(ws: Workspace, sql: str) -> list[tuple]:
    with connect_reader(ws) as con:
        return [tuple(_plain(v) for v in r) for r in con.execute(sql).fetchall()]


def error(ws: Workspace, metrics: list[str], **kw) -> str:
    with pytest.raises(UserError) as e:
        run_metric_query(ws, MetricQuery(metrics=metrics, **kw))
    return str(e.value)


# ---- joins never double-count ---------------------------------------------------------------------


def test_measures_of_two_models_by_a_joined_dimension_are_each_counted_once(shop):
    # 7 orders, 16 order lines: a join from lines to orders must not multiply orders, nor the reverse.
    assert rows(shop, ["orders", "revenue"], group_by=["customer__region"]) == [
        ("EMEA", 2, 105.5), ("NA", 4, 355.0), (None, 1, 35.0)]  # customer 5 is unknown: a NULL group, kept
    assert rows(shop, ["orders", "revenue"], group_by=["order__channel"]) == [
        ("mobile", 2, 110.0), ("store", 1, 75.0), ("web", 4, 310.5)]
    assert rows(shop, ["orders", "revenue", "units_sold"]) == [(7, 495.5, 25)]


def test_a_simple_grouped_metric_compiles_to_one_flat_aggregate(manifest):
    c = compile_query(manifest, MetricQuery(metrics=["revenue"], group_by=["customer__region"]))
    assert c.columns == ["customer__region", "revenue"]
    assert c.tree.find(exp.CTE) is None
    assert len(list(c.tree.find_all(exp.Select))) == 1  # no sub-query for the optimiser to see through
    assert not list(c.tree.find_all(exp.Distinct))
    joins = c.tree.args["joins"]
    assert [(j.side, j.this.name) for j in joins] == [("LEFT", "customers")]
    assert [e.sql() for e in c.tree.args["group"].expressions] == ["customer.region"]


def test_two_models_sharing_a_primary_entity_join_one_to_one(shop):
    # customers and customer_profiles both have `customer` as primary entity.
    assert rows(shop, ["new_customers"], group_by=["customer__tier"]) == [("bronze", 1), ("gold", 2), ("silver", 1)]
    assert rows(shop, ["revenue"], group_by=["customer__tier"]) == [("gold", 240.5), ("silver", 220.0), (None, 35.0)]


def test_multi_hop_dimensions_and_entity_path(shop):
    # order_items -> orders -> customers: segment of the order's customer.
    expect = [("enterprise", 220.0), ("smb", 240.5), (None, 35.0)]
    assert rows(shop, ["revenue"], group_by=["order__customer__segment"]) == expect
    assert rows(shop, ["smb_revenue"]) == [(240.5,)]  # filter: Dimension('customer__segment', entity_path=['order'])


def test_short_names_resolve_when_one_path_is_shortest(shop):
    assert rows(shop, ["revenue"], group_by=["region"]) == [("EMEA", 105.5), ("NA", 355.0), (None, 35.0)]


def test_entities_and_date_parts_as_group_by(shop):
    assert rows(shop, ["revenue"], group_by=["customer"]) == [(1, 105.5), (2, 220.0), (3, 135.0), (5, 35.0)]
    assert rows(shop, ["orders"], group_by=["metric_time__extract_month"]) == [(1, 2), (2, 2), (3, 3)]
    assert rows(shop, ["orders"], group_by=["order__ordered_at__quarter"]) == [(D(2024, 1, 1), 7)]
    # MetricFlow's saved-query spelling of a group-by
    res = run_metric_query(shop, MetricQuery(metrics=["orders"], group_by=["TimeDimension('metric_time', 'month')"]))
    assert res.columns == ["metric_time__month", "orders"] and len(res.rows) == 3


def test_metrics_of_different_models_combine_on_the_group_by_columns(shop):
    # new_customers counts on signup_date, revenue on ordered_at: both are metric_time.
    got = rows(shop, ["revenue", "new_customers"], group_by=["metric_time__month"])
    assert got == [(D(2024, 1, 1), 105.5, 2), (D(2024, 2, 1), 275.0, 1), (D(2024, 3, 1), 115.0, 1)]
    got = rows(shop, ["revenue", "new_customers"], group_by=["metric_time__month", "customer__tier"])
    assert (D(2024, 3, 1), "bronze", None, 1) in got and (D(2024, 2, 1), "silver", 200.0, None) in got


# ---- ratio and derived ------------------------------------------------------------------------------


def test_ratio_metrics(shop):
    assert rows(shop, ["average_order_value"], group_by=["customer__region"]) == [
        ("EMEA", 52.75), ("NA", 88.75), (None, 35.0)]
    # numerator with its own filter and alias, on the same measure as the denominator
    assert rows(shop, ["return_rate", "gift_revenue_share"]) == [(round(1 / 7, 6), round(73 / 495.5, 6))]


def test_derived_metrics(shop):
    assert rows(shop, ["revenue_per_unit"], group_by=["metric_time__month"]) == [
        (D(2024, 1, 1), 105.5 / 8), (D(2024, 2, 1), 27.5), (D(2024, 3, 1), round(115 / 7, 6))]


def test_derived_with_offset_window_month(shop):
    assert rows(shop, ["revenue", "revenue_growth_mom"], group_by=["metric_time__month"]) == [
        (D(2024, 1, 1), 105.5, None), (D(2024, 2, 1), 275.0, round(169.5 / 105.5, 6)),
        (D(2024, 3, 1), 115.0, round(-160 / 275, 6))]


def test_derived_with_offset_window_day(shop):
    # each day shows the day before; the spine stops at the data's last day (Mar 20)
    assert rows(shop, ["revenue_prev_day"], group_by=["metric_time__day"]) == [
        (D(2024, 1, 6), 55.5), (D(2024, 1, 21), 50.0), (D(2024, 2, 4), 200.0), (D(2024, 2, 11), 75.0),
        (D(2024, 3, 2), 20.0), (D(2024, 3, 16), 60.0)]


def test_offset_that_is_not_whole_periods_moves_rows(shop):
    # 14 days back, read by month: Jan 5 -> Jan 19; Jan 20, Feb 3, Feb 10 -> Feb; Mar 1 -> Mar 15;
    # Mar 15 and Mar 20 land after the data's last day and are dropped.
    assert rows(shop, ["revenue_two_weeks_ago"], group_by=["metric_time__month"]) == [
        (D(2024, 1, 1), 55.5), (D(2024, 2, 1), 325.0), (D(2024, 3, 1), 20.0)]


def test_offset_to_grain(shop):
    got = rows(shop, ["revenue_start_of_month"], group_by=["metric_time__day"])
    # only March has revenue on its first day (order 14, Mar 1): every March day shows it
    assert got == [(D(2024, 3, d), 20.0) for d in range(1, 21)]


def test_offsets_need_metric_time(shop):
    assert "group by metric_time at a grain" in error(shop, ["revenue_growth_mom"], group_by=["customer__region"])


# ---- cumulative -------------------------------------------------------------------------------------

CALENDAR = """
WITH daily AS (SELECT date_trunc('day', ordered_at) AS d, sum(amount) AS r, count(*) AS n
               FROM order_items GROUP BY 1),
     cal AS (SELECT unnest(generate_series(min(d), max(d), INTERVAL 1 DAY)) AS d FROM daily),
     w AS (SELECT cal.d, sum(daily.r) OVER win AS r, sum(daily.n) OVER win AS n
           FROM cal LEFT JOIN daily ON daily.d = cal.d WINDOW win AS ({window}))
SELECT d, r FROM w WHERE n > 0 ORDER BY 1
"""


def test_cumulative_all_time_window_and_grain_to_date_by_day(shop):
    all_time = hand(shop, CALENDAR.format(window="ORDER BY cal.d"))
    assert rows(shop, ["cumulative_revenue"], group_by=["metric_time__day"]) == all_time
    assert len(all_time) == 76 and all_time[-1] == (D(2024, 3, 20), 495.5)
    week = hand(shop, CALENDAR.format(window="ORDER BY cal.d ROWS BETWEEN 6 PRECEDING AND CURRENT ROW"))
    assert rows(shop, ["revenue_7_days"], group_by=["metric_time__day"]) == week
    mtd = hand(shop, CALENDAR.format(window="PARTITION BY date_trunc('month', cal.d) ORDER BY cal.d"))
    assert rows(shop, ["revenue_mtd"], group_by=["metric_time__day"]) == mtd


def test_cumulative_period_agg_at_a_coarser_grain(shop):
    # first (default): the running total on each month's first day; last: on its last day
    assert rows(shop, ["cumulative_revenue", "cumulative_revenue_last"], group_by=["metric_time__month"]) == [
        (D(2024, 1, 1), 55.5, 105.5), (D(2024, 2, 1), 105.5, 380.5), (D(2024, 3, 1), 400.5, 495.5)]
    daily = hand(shop, CALENDAR.format(window="ORDER BY cal.d"))
    jan = [r for d, r in daily if d.month == 1]
    got = rows(shop, ["cumulative_revenue_average"], group_by=["metric_time__month"])
    assert got[0] == (D(2024, 1, 1), round(sum(jan) / len(jan), 6))


def test_cumulative_count_distinct_is_recomputed_from_rows(shop):
    expect = hand(shop, """
        WITH cal AS (SELECT unnest(generate_series(min(date_trunc('day', ordered_at)),
                                                   max(date_trunc('day', ordered_at)), INTERVAL 1 DAY)) AS d
                     FROM order_items)
        SELECT cal.d, count(DISTINCT oi.customer_id) FROM cal
        JOIN order_items oi ON date_trunc('day', oi.ordered_at) BETWEEN cal.d - INTERVAL 29 DAY AND cal.d
        GROUP BY 1 ORDER BY 1""")
    assert rows(shop, ["buyers_30_days"], group_by=["metric_time__day"]) == expect
    assert dict(expect)[D(2024, 2, 10)] == 3  # customers 1 (Jan 20), 2 and 3 within 30 days: not 4 lines


def test_cumulative_by_a_dimension(shop):
    got = rows(shop, ["cumulative_revenue_last"], group_by=["metric_time__month", "customer__region"])
    assert (D(2024, 3, 1), "NA", 355.0) in got and (D(2024, 3, 1), "EMEA", 105.5) in got


def test_a_metric_time_filter_applies_after_the_window(shop):
    # Feb 5 still sees the Feb 3 order in its 7-day window, though the filter starts on Feb 5.
    got = rows(shop, ["revenue_7_days"], group_by=["metric_time__day"], where=["metric_time__day >= '2024-02-05'"])
    assert got[0] == (D(2024, 2, 5), 200.0) and got[5] == (D(2024, 2, 10), 75.0)


def test_cumulative_without_metric_time(shop):
    assert rows(shop, ["cumulative_revenue"]) == [(495.5,)]  # all time: the total
    assert "group by metric_time at a grain" in error(shop, ["revenue_7_days"], group_by=["customer__region"])


def test_join_to_time_spine_fills_empty_days(shop):
    got = rows(shop, ["revenue_filled"], group_by=["metric_time__day"])
    assert len(got) == 76 and got[0] == (D(2024, 1, 5), 55.5) and got[1] == (D(2024, 1, 6), 0.0)


def test_a_filter_on_a_group_by_column_holds_for_filled_days(shop):
    # filled days have no region; asked for EMEA only, they are not EMEA (MetricFlow filters after filling)
    got = rows(shop, ["revenue_filled"], group_by=["customer__region", "metric_time__day"],
               where=["customer__region = 'EMEA'"])
    assert got and all(r[0] == "EMEA" for r in got)
    assert sum(r[2] for r in got) == 105.5


def test_a_warehouse_time_spine_table_is_used_when_present(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.create()
    with connect_writer(ws) as con:
        con.execute((SHOP / "data.sql").read_text())
        con.execute("CREATE TABLE metricflow_time_spine AS "
                    "SELECT CAST(range AS DATE) AS date_day FROM range(DATE '2023-01-01', DATE '2025-01-01', "
                    "INTERVAL 1 DAY)")
    shutil.copy(SHOP / "shop.yml", ws.catalog_dir / "semantic" / "shop.yml")
    res = run_metric_query(ws, MetricQuery(metrics=["revenue_7_days"], group_by=["metric_time__day"]))
    assert "metricflow_time_spine" in res.sql
    assert [(r[0], float(r[1])) for r in res.rows][:3] == [(D(2024, 1, 5), 55.5), (D(2024, 1, 6), 55.5),
                                                           (D(2024, 1, 7), 55.5)]
    # The spine table goes on past the last order: so does the 7-day window, six more days (as in MetricFlow).
    spine = CALENDAR.replace("max(d), INTERVAL", "max(d) + INTERVAL 6 DAY, INTERVAL")
    assert [(r[0], float(r[1])) for r in res.rows] == hand(ws, spine.format(window="ORDER BY cal.d ROWS 6 PRECEDING"))
    assert res.rows[-1][0] == D(2024, 3, 26)


# ---- aggregations -----------------------------------------------------------------------------------


def test_percentile_median_average_and_sum_boolean(shop):
    got = rows(shop, ["gifts", "median_item_amount", "p90_item_amount", "p90_item_amount_discrete",
                      "average_item_amount"], group_by=["metric_time__month"])
    amounts = {1: [10, 40, 5.5, 20, 30], 2: [100, 15, 25, 60, 75], 3: [12, 8, 44, 6, 10, 35]}
    gifts = {1: 1, 2: 1, 3: 2}
    for (month, g, med, p90, p90d, avg), (m, a) in zip(got, amounts.items()):
        assert month == D(2024, m, 1) and g == gifts[m]
        assert med == round(float(np.median(a)), 6)
        assert p90 == round(float(np.percentile(a, 90)), 6)
        assert p90d == float(np.percentile(a, 90, method="inverted_cdf"))
        assert avg == round(float(np.mean(a)), 6)


def test_semi_additive_measures(shop):
    # opening balance: the first day of each month, summed over accounts; closing: each account's last day
    assert rows(shop, ["opening_balance", "closing_balance"], group_by=["metric_time__month"]) == [
        (D(2024, 1, 1), 150.0, 180.0), (D(2024, 2, 1), 170.0, 175.0)]
    assert rows(shop, ["opening_balance", "closing_balance"]) == [(150.0, 175.0)]


# ---- filters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("where, expect", [
    ("{{ Dimension('customer__region') }} = 'NA'", 355.0),
    ("customer__region = 'NA'", 355.0),  # a plain name is read as a dimension name
    ("{{ TimeDimension('metric_time', 'month') }} = '2024-02-01'", 275.0),
    ("{{ Dimension('metric_time').grain('month') }} = '2024-02-01'", 275.0),
    ("{{ Entity('customer') }} = 2", 220.0),
    ("{{ Dimension('customer__segment', entity_path=['order']) }} = 'smb'", 240.5),
    ("lower({{ Dimension('order__channel') }}) IN ('web', 'store') AND order__customer__segment = 'smb'", 130.5),
])
def test_where_templates(shop, where, expect):
    assert rows(shop, ["revenue"], where=[where]) == [(expect,)]


def test_filters_join_dimensions_without_grouping_by_them(shop):
    assert rows(shop, ["revenue"], group_by=["metric_time__month"], where=["customer__region = 'NA'"]) == [
        (D(2024, 2, 1), 275.0), (D(2024, 3, 1), 80.0)]


def test_metric_and_measure_filters(shop):
    assert rows(shop, ["emea_revenue", "web_revenue", "revenue"]) == [(105.5, 310.5, 495.5)]
    assert rows(shop, ["emea_revenue", "web_revenue"], group_by=["order__channel"]) == [
        ("mobile", 50.0, None), ("web", 55.5, 310.5)]


@pytest.mark.parametrize("where, says", [
    ("{{ Metric('orders', ['customer']) }} > 1", "`Metric('orders', ...)` in a filter is not supported yet"),
    ("{{ Dimenshun('customer__region') }} = 'NA'", "cannot render the template"),
    ("customer__region = \"NA\"", "is a quoted name, not text"),
    ("customer__regoin = 'NA'", "did you mean `customer__region`"),
    ("customer__region = = 'NA'", "not a SQL condition"),
    ("customer__region = 'NA", "not a SQL condition"),
    ("1 = 1; DROP TABLE orders", "not a SQL condition (not one SQL expression"),
    ("(SELECT 1)", "not a SQL condition"),
])
def test_bad_filters_are_clear_errors(shop, where, says):
    assert says in error(shop, ["revenue"], where=[where])


# ---- names, order and limit -------------------------------------------------------------------------


def test_dimensions_every_metric_can_be_grouped_by(manifest):
    both = dimensions_for(manifest, ["revenue", "orders"])
    assert both[0] == "metric_time"
    assert {"customer__region", "order__channel", "customer__tier", "customer"} <= set(both)
    assert "order_item__is_gift" not in both  # orders cannot reach order lines (that would fan out)
    assert "order__customer__segment" in dimensions_for(manifest, ["revenue"])


def test_unknown_names_suggest_close_ones(shop):
    assert error(shop, ["revenu"]).startswith("no metric `revenu`; did you mean `revenue`")
    assert "no dimension `customer__regoin`; did you mean `customer__region`" in error(
        shop, ["revenue"], group_by=["customer__regoin"])
    assert "no time grain `mnth`; did you mean `month`" in error(shop, ["revenue"], group_by=["metric_time__mnth"])
    assert "is finer than the `day` grain" in error(shop, ["revenue"], group_by=["metric_time__hour"])
    assert "is not a time dimension" in error(shop, ["revenue"], group_by=["customer__region__month"])
    assert "conversion metrics are not supported yet" in error(shop, ["visit_conversion"])
    assert "asked for twice" in error(shop, ["revenue", "revenue"])


def test_ambiguous_short_names_list_the_full_names(manifest):
    from catalog.semantic.spec import SemanticManifest
    stores = {"name": "stores", "model": "ref('stores')",
              "entities": [{"name": "store", "type": "primary", "expr": "store_id"}],
              "dimensions": [{"name": "region", "type": "categorical"}]}
    extra = SemanticManifest.model_validate({"semantic_models": [stores]})
    items = manifest.model("order_items").model_copy(deep=True)
    items.entities.append(items.entities[0].model_copy(update={"name": "store", "type": "foreign", "expr": "store_id"}))
    m = manifest.merged(extra).merged(SemanticManifest(semantic_models=[items]))
    with pytest.raises(UserError) as e:
        compile_query(m, MetricQuery(metrics=["revenue"], group_by=["region"]))
    assert "is ambiguous" in str(e.value)
    assert "`customer__region`" in str(e.value) and "`store__region`" in str(e.value)


def test_order_by_and_limit(shop):
    assert rows(shop, ["revenue"], group_by=["customer__region"], order_by=["-revenue"], limit=2) == [
        ("NA", 355.0), ("EMEA", 105.5)]
    assert rows(shop, ["orders"], group_by=["order__channel"], order_by=["-order__channel"]) == [
        ("web", 4), ("store", 1), ("mobile", 2)]
    assert "order-by: no column `revnue`" in error(shop, ["revenue"], order_by=["revnue"])


def test_the_row_limit_of_the_workspace_truncates_and_says_so(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.create()
    with connect_writer(ws) as con:
        con.execute((SHOP / "data.sql").read_text())
    shutil.copy(SHOP / "shop.yml", ws.catalog_dir / "semantic" / "shop.yml")
    ws.settings_path.write_text("[sql]\nrow_limit = 2\n")
    ws = Workspace(ws.root)  # settings are read once per workspace object
    res = run_metric_query(ws, MetricQuery(metrics=["revenue"], group_by=["customer"]))
    assert len(res.rows) == 2 and res.truncated and "row_limit" in res.warnings[0]

"""Charts a person can read in either theme: a Table / Bar / Line / Pie switch, transparent backgrounds with
colours that read on light and dark, the toolbar clear of the legend, two scales on two axes, and a long list cut
to its top rows (the table keeps them all)."""
from __future__ import annotations

from agent.channels.plotly_figures import MAX_BARS, MAX_SERIES, figure
from agent.charts import MAX_SLICES, additive_columns, chart_for
from agent.events import ChartSpec
from agent.state import TableData

BY_REGION = TableData(columns=["customer__region", "revenue", "orders"], row_count=4, rows=[
    ["NA", 9_798_775.6, 1410], ["EMEA", 9_423_479.3, 1302], ["APAC", 5_576_006.6, 801], ["LATAM", 2_927_840.9, 420]])


def _buttons(fig):
    return {b["label"]: b for b in fig["layout"]["updatemenus"][0]["buttons"]}


def test_the_switch_offers_a_table_of_every_column():
    table = TableData(columns=["customer__region", "revenue"], row_count=2, rows=[["NA", 1234.5], ["EMEA", 99.0]])
    fig = figure(ChartSpec(step_id="s1", kind="bar", x="customer__region", y=["revenue"], pie=True), table)
    buttons = _buttons(fig)
    assert list(buttons) == ["Table", "Bar", "Line", "Pie"]
    assert fig["layout"]["updatemenus"][0]["active"] == 1  # the chart opens as bars
    data, layout = buttons["Table"]["args"]
    assert buttons["Table"]["method"] == "update" and data["type"] == ["table"]
    first = fig["data"][0]  # what the table shows rides on the first trace, unused while it is drawn as bars
    assert first["header"]["values"] == ["Region", "Revenue"]
    assert first["cells"]["values"] == [["NA", "EMEA"], ["1,234.50", "99.00"]]
    assert layout["xaxis.visible"] is False and layout["yaxis.visible"] is False
    back, axes = buttons["Bar"]["args"]
    assert back["type"] == ["bar"] and axes["xaxis.visible"] is True


def test_several_series_switch_to_one_table_and_back():
    table = TableData(columns=["metric_time__month", "customer__region", "revenue"], row_count=4, rows=[
        ["2025-01-01", "NA", 1.0], ["2025-01-01", "EMEA", 2.0], ["2025-02-01", "NA", 3.0], ["2025-02-01", "EMEA", 4.0]])
    fig = figure(ChartSpec(step_id="s1", kind="line", x="metric_time__month", y=["revenue"],
                           color="customer__region"), table)
    buttons = _buttons(fig)
    assert list(buttons) == ["Table", "Bar", "Line"]
    assert fig["layout"]["updatemenus"][0]["active"] == 2
    shown = buttons["Table"]["args"][0]
    assert shown["visible"] == [True, False] and shown["type"][0] == "table"
    assert fig["data"][0]["cells"]["values"][0] == ["2025-01", "2025-01", "2025-02", "2025-02"]
    assert buttons["Line"]["args"][0]["visible"] == [True, True]


def test_charts_read_on_a_light_and_a_dark_page():
    fig = figure(ChartSpec(step_id="s1", kind="bar", x="customer__region", y=["revenue"]), BY_REGION)
    layout = fig["layout"]
    assert layout["paper_bgcolor"] == layout["plot_bgcolor"] == "rgba(0,0,0,0)"
    grey = layout["font"]["color"]
    r, g, b = (int(grey[i:i + 2], 16) for i in (1, 3, 5))
    assert 100 <= r == g == b <= 160  # mid grey: reads on white and on near-black
    assert "rgba" in layout["xaxis"]["gridcolor"] and "rgba" in layout["yaxis"]["gridcolor"]
    assert fig["config"]["displaylogo"] is False


def test_the_toolbar_never_covers_the_legend():
    table = TableData(columns=["metric_time__month", "customer__region", "revenue"], row_count=2, rows=[
        ["2025-01-01", "NA", 1.0], ["2025-01-01", "EMEA", 2.0]])
    fig = figure(ChartSpec(step_id="s1", kind="line", x="metric_time__month", y=["revenue"],
                           color="customer__region"), table)
    legend = fig["layout"]["legend"]
    assert legend["y"] < 0 and legend["yanchor"] == "top"  # under the plot; the toolbar sits at its top right


def test_two_scales_get_two_axes():
    fig = figure(ChartSpec(step_id="s1", kind="bar", x="customer__region", y=["revenue", "orders"]), BY_REGION)
    assert [t.get("yaxis", "y") for t in fig["data"]] == ["y", "y2"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "Revenue" and fig["layout"]["yaxis2"]["title"]["text"] == "Orders"
    assert fig["layout"]["yaxis2"]["overlaying"] == "y"
    assert len({t["offsetgroup"] for t in fig["data"]}) == 2  # bars side by side, not drawn over each other


def test_one_scale_keeps_one_axis():
    table = TableData(columns=["customer__region", "revenue", "cost"], row_count=2,
                      rows=[["NA", 9_798_775.6, 7_100_000.0], ["EMEA", 9_423_479.3, 6_000_000.0]])
    fig = figure(ChartSpec(step_id="s1", kind="bar", x="customer__region", y=["revenue", "cost"]), table)
    assert "yaxis2" not in fig["layout"] and all(t.get("yaxis", "y") == "y" for t in fig["data"])


def test_a_long_list_is_charted_by_its_top_rows():
    rows = [[f"product {i:03d}", float(i * 10)] for i in range(60)]
    table = TableData(columns=["product__name", "revenue"], rows=rows, row_count=60)
    chart = chart_for("s1", table)
    assert chart is not None and chart.kind == "bar"
    fig = figure(chart, table)
    bars = fig["data"][0]
    assert len(bars["x"]) == MAX_BARS and bars["x"][0] == "product 059" and bars["y"][0] == 590.0
    assert bars["y"] == sorted(bars["y"], reverse=True)
    assert f"top {MAX_BARS} of 60" in fig["layout"]["title"]["text"]
    assert len(bars["cells"]["values"][0]) == 60  # the table keeps every row
    assert "Pie" not in _buttons(fig)  # no pie of sixty slices


def test_many_series_keep_the_largest():
    rows = [[f"2025-{m:02d}-01", f"p{p:02d}", float(p * 100 + m)] for m in range(1, 4) for p in range(30)]
    table = TableData(columns=["metric_time__month", "product__name", "revenue"], rows=rows, row_count=len(rows))
    chart = chart_for("s1", table)
    assert chart is not None and chart.color == "product__name"
    fig = figure(chart, table)
    # The largest series, in the order the rows name them.
    assert [t["name"] for t in fig["data"]] == [f"p{p:02d}" for p in range(30 - MAX_SERIES, 30)]
    assert f"top {MAX_SERIES} of 30" in fig["layout"]["title"]["text"]


def test_no_chart_of_one_row_or_of_no_measure():
    assert chart_for("s1", TableData(columns=["r", "v"], rows=[["NA", 1.0]], row_count=1)) is None
    assert chart_for("s1", TableData(columns=["a", "b"], rows=[["x", "y"], ["z", "w"]], row_count=2)) is None


SUM_BY_REGION = ("SELECT customer.region AS customer__region, SUM(order_items.amount) AS revenue FROM order_items "
                 "LEFT JOIN customers AS customer ON order_items.customer_id = customer.customer_id GROUP BY 1")
# As the semantic layer compiles several metrics: each measure in a CTE, joined and renamed in the outer query.
COMPILED = """WITH n0 AS (SELECT customer.region AS customer__region, SUM(order_items.amount) AS revenue_amount
  FROM order_items LEFT JOIN customers AS customer ON order_items.customer_id = customer.customer_id GROUP BY 1),
n1 AS (SELECT customer.region AS customer__region, COUNT(orders.order_id) AS order_count,
  COUNT(orders.order_id) FILTER (WHERE orders.status = 'returned') AS returned,
  COUNT(DISTINCT orders.customer_id) AS buyers, AVG(orders.total) AS average_total
  FROM orders LEFT JOIN customers AS customer ON orders.customer_id = customer.customer_id GROUP BY 1)
SELECT COALESCE(n0.customer__region, n1.customer__region) AS customer__region, n0.revenue_amount AS revenue,
  n1.order_count AS orders, n1.returned AS returned_orders, n1.buyers AS customers_with_orders,
  n1.average_total AS average_order_value,
  CAST(n1.returned AS DOUBLE) / CAST(NULLIF(n1.order_count, 0) AS DOUBLE) AS return_rate
FROM n0 FULL OUTER JOIN n1 ON n0.customer__region IS NOT DISTINCT FROM n1.customer__region"""


def test_additive_columns_are_sums_and_counts_traced_through_the_query():
    assert additive_columns(SUM_BY_REGION) == {"revenue"}
    assert additive_columns(COMPILED) == {"revenue", "orders", "returned_orders"}
    assert additive_columns("select status, count(*) as n from orders group by 1") == {"n"}
    assert additive_columns("select s, n from (select status as s, sum(qty) as n from orders group by 1) t") == {"n"}
    assert additive_columns("select region, sum(amount)::double as revenue from o group by 1") == {"revenue"}
    for sql in ("select region, avg(amount) as a from o group by 1",
                "select region, median(ms) as p50 from o group by 1",
                "select region, sum(a) / count(*) as mean from o group by 1",
                "select region, max(amount) as top from o group by 1",
                "select region, amount from o",
                "select region, sum(a) as s from o group by 1 union all select 'x', 1",
                "", "this is not sql ("):
        assert additive_columns(sql) == set(), sql


def _pie(chart) -> bool:
    return "Pie" in _buttons(figure(chart, TABLES[chart.step_id]))


TABLES = {
    "sum": TableData(columns=["customer__region", "revenue"], sql=SUM_BY_REGION, row_count=4,
                     rows=[["NA", 9.8], ["EMEA", 9.4], ["APAC", 5.6], ["LATAM", 2.9]]),
    "avg": TableData(columns=["customer__region", "revenue"], sql=SUM_BY_REGION.replace("SUM(", "AVG("), row_count=2,
                     rows=[["NA", 9.8], ["EMEA", 9.4]]),
    "no_sql": TableData(columns=["Percentile", "Latency (ms)"], row_count=3,
                        rows=[["p50", 278.3], ["p95", 331.3], ["p99", 331.8]]),
    "negative": TableData(columns=["customer__region", "revenue"], sql=SUM_BY_REGION, row_count=2,
                          rows=[["NA", 9.8], ["EMEA", -1.0]]),
    "many": TableData(columns=["customer__region", "revenue"], sql=SUM_BY_REGION, row_count=MAX_SLICES + 1,
                      rows=[[f"r{i}", float(i + 1)] for i in range(MAX_SLICES + 1)]),
    "time": TableData(columns=["metric_time__month", "revenue"], row_count=2,
                      sql=SUM_BY_REGION.replace("customer.region", "DATE_TRUNC('MONTH', ordered_at)"),
                      rows=[["2026-01-01", 9.8], ["2026-02-01", 9.4]]),
    "two": TableData(columns=["customer__region", "revenue", "orders"], row_count=2, rows=[["NA", 9.8, 3], ["EMEA", 9.4, 2]],
                     sql=SUM_BY_REGION.replace(" AS revenue", " AS revenue, COUNT(*) AS orders")),
}


def test_a_pie_is_offered_only_for_parts_of_a_whole():
    charts = {k: chart_for(k, t) for k, t in TABLES.items()}
    assert charts["sum"].pie and _pie(charts["sum"])  # one additive measure by a few categories
    for kind in ("avg", "no_sql", "negative", "many", "time", "two"):
        assert not charts[kind].pie and not _pie(charts[kind]), kind

"""Charts a person can read in either theme: a Table / Bar / Line / Pie switch, transparent backgrounds with
colours that read on light and dark, the toolbar clear of the legend, two scales on two axes, and a long list cut
to its top rows (the table keeps them all)."""
from __future__ import annotations

from agent.channels.plotly_figures import MAX_BARS, MAX_SERIES, figure
from agent.charts import chart_for
from agent.events import ChartSpec
from agent.state import TableData

BY_REGION = TableData(columns=["customer__region", "revenue", "orders"], row_count=4, rows=[
    ["NA", 9_798_775.6, 1410], ["EMEA", 9_423_479.3, 1302], ["APAC", 5_576_006.6, 801], ["LATAM", 2_927_840.9, 420]])


def _buttons(fig):
    return {b["label"]: b for b in fig["layout"]["updatemenus"][0]["buttons"]}


def test_the_switch_offers_a_table_of_every_column():
    table = TableData(columns=["customer__region", "revenue"], row_count=2, rows=[["NA", 1234.5], ["EMEA", 99.0]])
    fig = figure(ChartSpec(step_id="s1", kind="bar", x="customer__region", y=["revenue"]), table)
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

"""Result tables carry their metrics' units, as every front-end shows them: a currency or a count of hours in the
header ("Revenue (USD)", a label that names its unit keeps it once), a share in its cells ("12.5%"); the CSV and the
chart keep the raw numbers, and the chart's axes carry the unit too."""
from __future__ import annotations

from agent.channels.markdown_views import csv_text, table_markdown
from agent.channels.plotly_figures import figure
from agent.charts import chart_for
from agent.result_text import presented, readable, unit_label
from agent.state import TableData

UNITS = {"revenue": "USD", "return_rate": "percent", "resolution_time": "hours"}
LABELS = {"revenue": "Revenue", "return_rate": "Return rate", "resolution_time": "Resolution time (hours)",
          "region": "Region"}
BY_REGION = TableData(columns=["customer__region", "revenue", "return_rate", "resolution_time", "orders"],
                      row_count=2, rows=[["NA", 17_612_345.5, 0.125, 12.25, 1410],
                                         ["EMEA", 9_423_479.25, 0.0612, None, 1302]])


def test_a_unit_reads_in_the_header_and_a_share_in_its_cells():
    assert unit_label("Revenue", "USD") == "Revenue (USD)"
    assert unit_label("Resolution time (hours)", "hours") == "Resolution time (hours)"  # said once
    assert unit_label("Return rate", "percent") == "Return rate"  # its cells say it
    assert unit_label("Orders", None) == "Orders"
    shown = readable(BY_REGION, LABELS, UNITS)
    assert shown.columns == ["Region", "Revenue (USD)", "Return rate", "Resolution time (hours)", "Orders"]
    assert shown.rows[0][2] == "12.5%" and shown.rows[1][2] == "6.1%"
    assert shown.rows[0][1] == 17_612_345.5 and shown.rows[1][3] is None  # other figures stay numbers until drawn
    md = table_markdown(shown)
    assert "| Region | Revenue (USD) | Return rate | Resolution time (hours) | Orders |" in md
    assert "| NA | 17,612,345.50 | 12.5% | 12.25 | 1410 |" in md


def test_the_csv_keeps_raw_numbers_under_labelled_headers():
    rows = csv_text(presented(BY_REGION, LABELS, UNITS)).splitlines()
    assert rows[0] == "Region,Revenue (USD),Return rate,Resolution time (hours),Orders"
    assert rows[1] == "NA,17612345.5,0.125,12.25,1410"


def test_no_units_changes_nothing():
    assert readable(BY_REGION) == presented(BY_REGION)
    assert presented(BY_REGION).columns == ["Region", "Revenue", "Return rate", "Resolution time", "Orders"]


def test_chart_axes_and_its_table_carry_the_unit():
    table = TableData(columns=["customer__region", "revenue"], row_count=2, rows=[["NA", 1234.5], ["EMEA", 99.0]])
    fig = figure(chart_for("s1", table), table, LABELS, UNITS)
    assert fig["layout"]["yaxis"]["title"]["text"] == "Revenue (USD)"
    assert fig["data"][0]["y"] == [1234.5, 99.0]  # drawn from the raw numbers
    assert fig["data"][0]["header"]["values"] == ["Region", "Revenue (USD)"]

    rates = TableData(columns=["metric_time__month", "return_rate"], row_count=2,
                      rows=[["2026-01-01", 0.125], ["2026-02-01", 0.0612]])
    fig = figure(chart_for("s1", rates), rates, LABELS, UNITS)
    y = fig["layout"]["yaxis"]
    assert y["tickformat"] == ".1%" and y["title"]["text"] == "Return rate"  # its ticks read "12.5%"
    assert fig["data"][0]["y"] == [0.125, 0.0612] and fig["data"][0]["yhoverformat"] == ".1%"
    assert fig["data"][0]["cells"]["values"][1] == ["12.5%", "6.1%"]


def test_two_axes_each_carry_their_unit():
    table = TableData(columns=["customer__region", "revenue", "return_rate"], row_count=2,
                      rows=[["NA", 17_612_345.5, 0.125], ["EMEA", 9_423_479.25, 0.0612]])
    fig = figure(chart_for("s1", table), table, LABELS, UNITS)
    assert fig["layout"]["yaxis"]["title"]["text"] == "Revenue (USD)"
    assert fig["layout"]["yaxis2"]["title"]["text"] == "Return rate"
    assert fig["layout"]["yaxis2"]["tickformat"] == ".1%" and "tickformat" not in fig["layout"]["yaxis"]


def test_titles_say_semantic_names_as_labels():
    from agent.channels.plan_views import plan_markdown
    from agent.result_text import said_names
    from agent.state import Plan, Step

    assert said_names("revenue by customer__region and metric_time__month") == "revenue by region and month"
    assert said_names("Create table `rbr` (revenue by customer__region)") == "Create table `rbr` (revenue by region)"
    assert said_names("Count the rows of order_items") == "Count the rows of order_items"  # a table name stays
    plan = Plan(steps=[Step(id="s1", tool="query_metrics", title="revenue by customer__region",
                            args={"metrics": ["revenue"], "group_by": ["customer__region"]})])
    text = plan_markdown(plan, [])
    assert "**revenue by region**" in text and "group by `customer__region`" in text  # the arguments as they run

"""What the front-ends draw from events: Markdown tables (data never breaks the layout),
Plotly figures from chart specs, and a person's JSON edit of a step read with clear errors."""
from __future__ import annotations

import pytest

from agent.channels.edits import parse_step_edit
from agent.channels.markdown_views import cell_text, table_markdown
from agent.channels.plotly_figures import figure
from agent.events import ChartSpec
from agent.state import TableData
from core.errors import UserError


def test_cells_from_data_cannot_break_the_table():
    assert cell_text("a | b\nc") == "a \\| b c"
    assert cell_text("**bold** `x` _y_") == "\\*\\*bold\\*\\* \\`x\\` \\_y\\_"
    assert cell_text(None) == "" and cell_text(3.0) == "3" and cell_text(1234.5) == "1,234.50"
    assert cell_text({"k": [1, 2]}) == '{"k": [1, 2]}'
    assert cell_text("x" * 300).endswith("…") and len(cell_text("x" * 300)) == 120


def test_a_table_shows_its_first_rows_and_says_what_it_left_out():
    table = TableData(columns=["region", "n"], rows=[[f"r{i}", i] for i in range(60)], row_count=60,
                      masked_columns=["email"], warnings=["rows limited to 10,000"], truncated=True)
    md = table_markdown(table, max_rows=2).splitlines()
    assert md[:4] == ["| region | n |", "| --- | --- |", "| r0 | 0 |", "| r1 | 1 |"]
    assert md[-1] == ("_showing 2 of 60 rows; the query had more rows than its limit; masked (PII): email; "
                      "rows limited to 10,000_")
    assert table_markdown(TableData(columns=["a"], rows=[])).splitlines()[-1] == "_no rows_"
    assert table_markdown(TableData(columns=["a"], rows=[[1]], row_count=1)).splitlines()[-1] == "_1 row_"


def test_a_typed_edit_becomes_the_session_edit_or_a_clear_error():
    assert parse_step_edit('{"name": "emea"}', "s1") == {"s1": {"name": "emea"}}
    assert parse_step_edit('```json\n{"limit": 5}\n```', "s2") == {"s2": {"limit": 5}}
    with pytest.raises(UserError, match=r"not valid JSON \(line 2, column 1: Expecting"):
        parse_step_edit('{"name":\n}', "s1")
    with pytest.raises(UserError, match="must be a JSON object naming the arguments to change.*got \\[1\\]"):
        parse_step_edit("[1]", "s1")
    with pytest.raises(UserError, match="is empty"):
        parse_step_edit("  ", "s1")


def test_bars_by_category_with_one_trace_per_colour():
    table = TableData(columns=["region", "status", "orders"],
                      rows=[["EMEA", "completed", 5], ["EMEA", "returned", 1], ["NA", "completed", 4]])
    fig = figure(ChartSpec(step_id="s1", kind="bar", x="region", y=["orders"], color="status", title="t"), table)
    assert [(t["type"], t["name"], t["x"], t["y"]) for t in fig["data"]] == [
        ("bar", "completed", ["EMEA", "NA"], [5, 4]), ("bar", "returned", ["EMEA"], [1])]
    assert fig["layout"]["barmode"] == "group" and fig["layout"]["xaxis"]["type"] == "category"
    assert fig["layout"]["showlegend"] is True


def test_lines_over_time_with_one_trace_per_measure():
    table = TableData(columns=["metric_time__month", "revenue", "orders"],
                      rows=[["2025-01-01", 10.5, 2], ["2025-02-01", 12.0, 3]])
    fig = figure(ChartSpec(step_id="s1", kind="line", x="metric_time__month", y=["revenue", "orders"]), table)
    assert [(t["type"], t["mode"], t["name"], t["y"]) for t in fig["data"]] == [
        ("scatter", "lines+markers", "Revenue", [10.5, 12.0]), ("scatter", "lines+markers", "Orders", [2, 3])]
    assert fig["data"][0]["x"] == ["2025-01", "2025-02"] and fig["layout"]["xaxis"]["title"]["text"] == "Month"
    # Two measures on different scales: the second has its own axis.
    assert fig["data"][1]["yaxis"] == "y2" and fig["layout"]["yaxis2"]["title"]["text"] == "Orders"
    with pytest.raises(ValueError, match="columns the table does not have: cost"):
        figure(ChartSpec(step_id="s1", kind="line", x="metric_time__month", y=["cost"]), table)

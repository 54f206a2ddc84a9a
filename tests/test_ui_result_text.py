"""How results read: labels, dates at their grain, compact figures and the closing sentence, on tables as the
agent hands them over (semantic-layer names, ISO timestamps, raw numbers)."""
from __future__ import annotations

from agent.channels.markdown_views import csv_text, pretty_sql
from agent.channels.plotly_figures import figure
from agent.events import ChartSpec
from agent.result_text import at_grain, compact, humanise, label, presented, summary_sentence
from agent.state import TableData


def test_column_names_read_as_labels():
    assert [humanise(c) for c in ("customer__region", "metric_time__month", "units_sold", "revenue")] == [
        "Region", "Month", "Units sold", "Revenue"]
    assert label("revenue", {"revenue": "Net revenue"}) == "Net revenue"
    assert label("order__status", {"status": "Order status"}) == "Order status"


def test_dates_show_at_their_grain():
    assert at_grain("2026-07-01T00:00:00", "quarter") == "Q3 2026"
    assert at_grain("2025-03-01", "month") == "2025-03"
    assert at_grain("2025-03-01T00:00:00", "year") == "2025"
    assert at_grain("2025-03-04T00:00:00", "day") == "2025-03-04"
    assert at_grain("NA", "month") == "NA" and at_grain(17, "month") == 17


def test_figures_are_compact_in_sentences():
    assert [compact(v) for v in (17_600_000, 2_500_000_000, 12_345.6, 0.25, 4000)] == [
        "17.6 M", "2.5 B", "12,346", "0.25", "4,000"]


def test_the_closing_sentence_says_what_was_computed():
    by_region = TableData(columns=["customer__region", "revenue"], row_count=3,
                          rows=[["NA", 17_612_000.0], ["EMEA", 9_423_479.3], ["APAC", 5_576_006.6]])
    assert summary_sentence("revenue by customer__region", by_region) == (
        "Revenue by region: NA leads with 17.6 M revenue (3 regions).")
    monthly = TableData(columns=["metric_time__month", "revenue"], row_count=2,
                        rows=[["2025-01-01T00:00:00", 100.0], ["2025-02-01T00:00:00", 2_500_000.0]])
    assert summary_sentence("revenue by metric_time__month", monthly) == (
        "Revenue by month: 2 months from 2025-01 to 2025-02; revenue 2.5 M in 2025-02.")
    one = TableData(columns=["orders_seen"], rows=[[4000]], row_count=1)
    assert summary_sentence("Run the SQL as typed", one) == "Run the SQL as typed: orders seen 4,000."
    assert summary_sentence("x", TableData(columns=["a"], rows=[])) == "X: no rows matched."
    for sentence in (summary_sentence("q", by_region), summary_sentence("q", monthly)):
        assert "columns:" not in sentence and "done" not in sentence


def test_a_time_series_with_a_category_is_one_line_per_category():
    table = TableData(columns=["metric_time__month", "customer__region", "revenue"], row_count=4, rows=[
        ["2025-01-01T00:00:00", "NA", 1.0], ["2025-01-01T00:00:00", "EMEA", 2.0],
        ["2025-02-01T00:00:00", "NA", 3.0], ["2025-02-01T00:00:00", "EMEA", 4.0]])
    fig = figure(ChartSpec(step_id="s1", kind="line", x="metric_time__month", y=["revenue"],
                           color="customer__region"), table)
    assert [(t["name"], t["x"], t["y"]) for t in fig["data"]] == [
        ("NA", ["2025-01", "2025-02"], [1.0, 3.0]), ("EMEA", ["2025-01", "2025-02"], [2.0, 4.0])]
    assert fig["layout"]["xaxis"]["title"]["text"] == "Month" and fig["layout"]["yaxis"]["title"]["text"] == "Revenue"
    assert [b["label"] for b in fig["layout"]["updatemenus"][0]["buttons"]] == ["Table", "Bar", "Line"]  # no pie of 2 series


def test_csv_and_sql_as_shown():
    table = presented(TableData(columns=["customer__region", "revenue"], rows=[["NA", 1234.5]], row_count=1))
    assert csv_text(table).splitlines() == ["Region,Revenue", "NA,1234.5"]
    assert pretty_sql("select a, count(*) from t group by a").splitlines() == [
        "SELECT", "  a,", "  COUNT(*)", "FROM t", "GROUP BY", "  a"]
    assert pretty_sql("this is not sql (") == "this is not sql ("


def test_an_answer_ends_with_what_was_done_in_a_plain_sentence():
    from agent.respond import compose
    from agent.state import AgentState, Plan, Step, StepResult

    plan = Plan(steps=[Step(id="s1", tool="deploy_model", title="Deploy tiny-qwen3-sft (serverless)"),
                       Step(id="s2", tool="create_derived_table", title="Create table `t`", depends_on=["s1"])])
    state = AgentState(plan=plan, results={
        "s1": StepResult(step_id="s1", tool="deploy_model", ok=True,
                         text="endpoint `tiny-qwen3-sft` is idle at http://127.0.0.1:1/v1 (serverless)\nmore"),
        "s2": StepResult(step_id="s2", tool="create_derived_table", ok=True, text="")})
    _, rest, outcome = compose(state)
    assert outcome == "answered" and "done:" not in rest
    assert rest.splitlines() == [
        "Deploy tiny-qwen3-sft (serverless): endpoint `tiny-qwen3-sft` is idle at http://127.0.0.1:1/v1 (serverless).",
        "Create table `t`: done."]

"""The closing sentence states the time window a result covers and the metric's unit: the window read from the
query's filters on dates (in the SQL as the semantic layer compiles it, or as a person types it), else the data's
own span; the unit from the semantic layer (`config.meta.unit`, or a label such as "Resolution time (hours)")."""
from __future__ import annotations

import datetime as dt

import pytest

from agent.result_text import semantic_units, summary_sentence, with_unit
from agent.state import TableData
from agent.time_window import describe_window, filter_window, window_of
from catalog.semantic.spec import SemanticManifest

D = dt.date.fromisoformat

COMPILED_Q3 = """SELECT customer.region AS customer__region, SUM(order_items.amount) AS revenue
FROM order_items AS order_items LEFT JOIN customers AS customer ON order_items.customer_id = customer.customer_id
WHERE DATE_TRUNC('DAY', order_items.ordered_at) >= CAST('2026-07-01' AS DATE)
  AND DATE_TRUNC('DAY', order_items.ordered_at) < CAST('2026-10-01' AS DATE)
GROUP BY customer.region ORDER BY 1"""


@pytest.mark.parametrize("sql, window", [
    (COMPILED_Q3, (D("2026-07-01"), D("2026-09-30"))),
    ("select region, sum(amount) from orders where ordered_at between '2026-01-01' and '2026-03-31' group by 1",
     (D("2026-01-01"), D("2026-03-31"))),
    ("SELECT count(*) FROM orders WHERE DATE '2026-03-01' <= ordered_at", (D("2026-03-01"), None)),
    ("select count(*) from orders where ordered_at > '2026-03-01' and status = 'open'", (D("2026-03-02"), None)),
    ("select count(*) from orders where ordered_at <= '2026-03-31'", (None, D("2026-03-31"))),
    ("select count(*) from orders where cast(ordered_at as date) = date '2026-05-05'", (D("2026-05-05"), D("2026-05-05"))),
    ("select status, count(*) from orders where status = 'open' group by 1", (None, None)),
    ("select count(*) from orders where ordered_at >= now() - interval 30 day", (None, None)),
    ("WITH r AS (SELECT * FROM orders WHERE ordered_at >= '2026-01-01') SELECT count(*) FROM r "
     "WHERE ordered_at < '2026-07-01'", (D("2026-01-01"), D("2026-06-30"))),
    ("this is not sql (", (None, None)),
    ("", (None, None)),
])
def test_the_window_is_read_from_the_filters_on_dates(sql, window):
    assert filter_window(sql) == window


def test_an_open_end_is_the_data_s_own():
    assert window_of("select 1 from t where d >= '2026-03-01'", span=("2025-01-04", "2026-12-03")) == (
        D("2026-03-01"), D("2026-12-03"))
    assert window_of("select 1 from t", span=("2025-01-04", "2026-12-03T00:00:00")) == (D("2025-01-04"), D("2026-12-03"))
    assert window_of("select 1 from t", span=None) is None
    assert window_of("select 1 from t", span=(None, None)) is None


@pytest.mark.parametrize("start, end, text", [
    ("2026-07-01", "2026-09-30", "Q3 2026 (2026-07-01 to 2026-09-30)"),
    ("2026-01-01", "2026-12-31", "2026 (2026-01-01 to 2026-12-31)"),
    ("2026-03-01", "2026-03-31", "March 2026 (2026-03-01 to 2026-03-31)"),
    ("2024-02-01", "2024-02-29", "February 2024 (2024-02-01 to 2024-02-29)"),
    ("2025-01-04", "2026-12-03", "2025-01-04 to 2026-12-03"),
    ("2026-07-01", "2026-07-01", "2026-07-01"),
])
def test_windows_read_as_a_report_names_them(start, end, text):
    assert describe_window(D(start), D(end)) == text


def test_figures_carry_their_unit():
    assert [with_unit(v, u) for v, u in [(17_612_000.0, "USD"), (9_423_479.3, "EUR"), (1234.5, "CHF"),
                                         (0.0612, "percent"), (0.5, "%"), (12.3456, "hours"), (4000, None)]] == [
        "$17.6 M", "€9.4 M", "1,234 CHF", "6.1%", "50.0%", "12.35 hours", "4,000"]
    assert with_unit(-2_500_000.0, "USD") == "-$2.5 M"


BY_REGION = TableData(columns=["customer__region", "revenue"], row_count=4, rows=[
    ["NA", 1_774_484.45], ["EMEA", 1_322_226.21], ["APAC", 942_706.47], ["LATAM", 678_063.77]],
    sql=COMPILED_Q3)


def test_the_sentence_states_window_and_unit():
    assert summary_sentence("revenue by customer__region", BY_REGION, window=(D("2026-07-01"), D("2026-09-30")),
                            units={"revenue": "USD"}) == (
        "Revenue by region for Q3 2026 (2026-07-01 to 2026-09-30): NA leads with $1.8 M revenue (4 regions).")


def test_an_unfiltered_question_states_the_data_s_span():
    assert summary_sentence("revenue by customer__region", BY_REGION, window=(D("2025-01-04"), D("2026-12-03")),
                            units={"revenue": "USD"}) == (
        "Revenue by region from 2025-01-04 to 2026-12-03: NA leads with $1.8 M revenue (4 regions).")


def test_a_rate_over_months_reads_in_percent_with_metric_labels():
    monthly = TableData(columns=["metric_time__month", "return_rate"], row_count=3, rows=[
        ["2026-01-01T00:00:00", 0.11], ["2026-02-01T00:00:00", 0.0612], ["2026-03-01T00:00:00", 0.05]])
    assert summary_sentence("return_rate by metric_time__month", monthly, {"return_rate": "Return rate"},
                            window=(D("2026-01-01"), D("2026-03-31")), units={"return_rate": "percent"}) == (
        "Return rate by month for Q1 2026 (2026-01-01 to 2026-03-31): 3 months from 2026-01 to 2026-03; "
        "return rate 5.0% in 2026-03.")


def test_a_unit_in_the_label_is_said_once():
    table = TableData(columns=["customer__region", "resolution_time"], row_count=2,
                      rows=[["EMEA", 30.25], ["NA", 12.0]])
    labels = {"resolution_time": "Resolution time (hours)"}
    assert summary_sentence("resolution_time by customer__region", table, labels, units={"resolution_time": "hours"},
                            window=(D("2026-11-01"), D("2026-11-30"))) == (
        "Resolution time by region for November 2026 (2026-11-01 to 2026-11-30): EMEA leads with 30.25 hours "
        "resolution time (2 regions).")


def test_a_single_figure_with_window_and_unit():
    one = TableData(columns=["revenue"], rows=[[26_726_102.5]], row_count=1)
    assert summary_sentence("revenue", one, window=(D("2026-01-01"), D("2026-12-31")), units={"revenue": "USD"}) == (
        "Revenue for 2026 (2026-01-01 to 2026-12-31): revenue $26.7 M.")
    assert summary_sentence("revenue", TableData(columns=["revenue"], rows=[]), window=(D("2026-07-01"), D("2026-09-30"))
                            ) == "Revenue for Q3 2026 (2026-07-01 to 2026-09-30): no rows matched."


def test_units_come_from_the_semantic_layer():
    manifest = SemanticManifest.model_validate({"semantic_models": [], "metrics": [
        {"name": "revenue", "type": "simple", "type_params": {"measure": "amount"}, "config": {"meta": {"unit": "USD"}}},
        {"name": "return_rate", "type": "simple", "type_params": {"measure": "r"}, "meta": {"unit": "percent"}},
        {"name": "resolution_time", "label": "Resolution time (hours)", "type": "simple",
         "type_params": {"measure": "h"}},
        {"name": "orders", "label": "Orders", "type": "simple", "type_params": {"measure": "n"}},
    ]})
    assert semantic_units(manifest) == {"revenue": "USD", "return_rate": "percent", "resolution_time": "hours"}


def test_typed_sql_states_its_filtered_window_and_counts_in_plain_plurals():
    sql = ("select status, count(*) as orders from orders where ordered_at >= '2026-01-01' and ordered_at < "
           "'2026-04-01' group by status")
    table = TableData(columns=["status", "orders"], rows=[["completed", 402], ["returned", 31], ["open", 12]],
                      row_count=3, sql=sql)
    assert summary_sentence("Run the SQL as typed", table, window=window_of(sql)) == (
        "Run the SQL as typed for Q1 2026 (2026-01-01 to 2026-03-31): completed leads with 402 orders (3 statuses).")
    by_category = TableData(columns=["category", "units"], rows=[["toys", 3], ["games", 5]], row_count=2)
    assert summary_sentence("units by category", by_category).endswith("(2 categories).")
    daily = TableData(columns=["metric_time__day", "orders"], rows=[["2026-01-01", 3], ["2026-01-02", 5]], row_count=2)
    assert summary_sentence("orders by day", daily).startswith("Orders by day: 2 days from 2026-01-01 to 2026-01-02")

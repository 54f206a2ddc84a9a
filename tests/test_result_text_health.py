""""How is the endpoint doing?" answered in the visible message: requests, error rate, latency p50/p95/p99 and the
drift status in a small table, a latency plot's rows, and a plain word when there was too little traffic for a drift
test. Pure functions on the report's summary, and the real report tool on recorded traffic."""
from __future__ import annotations

import datetime as dt

import pytest

from agent.channels.plotly_figures import figure
from agent.charts import chart_for
from agent.health_text import health_answer
from agent.state import TableData
from runtimes.monitoring.traffic import record
from tests.test_monitoring_monitors import requests
from tools.registry import ToolRegistry


def _summary(requests: int, drift=None, notes=(), current=0, reference=0):
    traffic = ({"requests": requests, "errors": 3, "error_rate": 3 / requests, "latency_p50_ms": 301.4,
                "latency_p95_ms": 1_366.0, "latency_p99_ms": 2_012.7} if requests else
               {"requests": 0, "errors": 0, "error_rate": 0.0, "latency_p50_ms": None, "latency_p95_ms": None,
                "latency_p99_ms": None})
    return {"endpoint": "tickets", "status": "ok" if requests else "no_traffic",
            "summary": {"window": {"start": "2026-11-27T03:00:00+00:00", "end": "2026-12-04T03:00:00+00:00",
                                   "length": "7d"},
                        "traffic": traffic, "drift": drift, "current_rows": current,
                        "reference": {"rows": reference}, "notes": list(notes)}}


def _cells(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]


def test_the_figures_are_in_a_small_table():
    drift = {"dataset_drift": False, "drifted_columns": [], "columns": [{"column": "response_length"},
                                                                       {"column": "prompt_length"}]}
    text = health_answer(_summary(1_234, drift=drift, current=1_231, reference=1_100))
    header, _, row = _cells(text)
    assert header == ["Requests", "Error rate", "Latency p50", "p95", "p99", "Drift"]
    assert row == ["1,234", "0.2%", "301 ms", "1,366 ms", "2,013 ms", "none in 2 features"]
    assert "`tickets`" in text and "2026-11-27 to 2026-12-04" in text


def test_drifted_features_are_named():
    drift = {"dataset_drift": True, "drifted_columns": ["response_length"],
             "columns": [{"column": "response_length"}, {"column": "prompt_length"}]}
    row = _cells(health_answer(_summary(120, drift=drift, current=117, reference=118)))[2]
    assert row[-1] == "1 of 2 features: response_length"


def test_too_little_traffic_is_said_plainly():
    note = ("no drift test: 12 answered requests in the window and 0 in the reference, fewer than the monitor's "
            "min_rows (50)")
    text = health_answer(_summary(12, notes=[note], current=12, reference=0))
    assert _cells(text)[2][-1] == "not tested"
    assert "Too little traffic for a drift test: 12 requests in this window and 0 in the one before; it needs at " \
           "least 50 in each." in text


def test_no_traffic_at_all():
    text = health_answer(_summary(0))
    assert "No requests reached `tickets` from 2026-11-27 to 2026-12-04" in text
    assert "|" not in text  # no table of empty figures


@pytest.mark.slow
def test_the_report_tool_answers_with_latency_rows_to_plot(workspace):
    now = dt.datetime.now(dt.timezone.utc)
    record(workspace, requests(now - dt.timedelta(hours=30), 8, seed=3))  # spread over the 24 hours after
    tool = ToolRegistry.discover().bind(workspace)["endpoint_report"]
    out = tool.run_validated(tool.schema().model_validate({"endpoint": "tickets", "period": "2d"}))
    table = TableData.from_result(out.result)
    assert table.columns == ["Percentile", "Latency (ms)"] and [r[0] for r in table.rows] == ["p50", "p95", "p99"]
    assert all(isinstance(r[1], float) and r[1] > 0 for r in table.rows)
    chart = chart_for("s1", table)
    assert chart is not None and (chart.kind, chart.x) == ("bar", "Percentile")
    # Percentiles are not parts of a whole: no pie is offered for them.
    assert not chart.pie
    assert "Pie" not in [b["label"] for b in figure(chart, table)["layout"]["updatemenus"][0]["buttons"]]
    text = health_answer(out.data)
    assert _cells(text)[2][0] == "8" and "Too little traffic for a drift test: 8 requests" in text

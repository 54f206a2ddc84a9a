"""Answers as a person reads them, in a real browser (`app.py` under Chainlit on a demo workspace, offline planner,
Debian's Chromium through Playwright): the closing sentence names the time window and the metric's unit, the chart
switches to a table of the rows, charts read in the light and the dark theme, and "how is the endpoint doing?"
shows its figures in a small table and a plot, saying plainly that there was too little traffic for a drift test.
Screenshots land in `tests/artifacts/screenshots/answers_*.png`.
"""
from __future__ import annotations

import datetime as dt

import pytest

from catalog.semantic.query import MetricQuery
from catalog.semantic.runner import run_metric_query
from core.workspace import Workspace
from tests.ui_server import ask, browser, chromium, click, evidence, screenshot, shown, ui_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium() is None, reason="Debian's `chromium` is not installed "
                                 "(apt-get install -y chromium); the browser test needs it")]

Q3 = ["{{ TimeDimension('metric_time', 'day') }} >= CAST('2026-07-01' AS DATE)",
      "{{ TimeDimension('metric_time', 'day') }} < CAST('2026-10-01' AS DATE)"]


def _endpoint_with_a_little_traffic(ws: Workspace) -> None:
    """A stopped endpoint `tickets` with eight requests recorded yesterday: figures, but too few for a drift test."""
    from runtimes.monitoring.traffic import record
    from runtimes.serving.endpoints.store import EndpointStore
    from tests.test_monitoring_monitors import requests

    EndpointStore(ws).create(name="tickets", models=[{"id": "tiny-qwen3-sft@1"}], mode="realtime", idle_timeout=300,
                             host="127.0.0.1", fixed_port=None, key_hash="unused", local_key_hash=None, engine={},
                             capture_rate=1.0)
    record(ws, requests(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=30), 8, seed=3))


def _first_trace_type(page, nth: int) -> str:
    return page.evaluate("(n) => Array.from(document.querySelectorAll('.js-plotly-plot'))[n].data[0].type", nth)


def test_answers_state_window_unit_and_health(demo_ws: Workspace, tmp_path):
    ws = demo_ws
    q3 = run_metric_query(ws, MetricQuery(metrics=["revenue"], group_by=["customer__region"], where=Q3)).to_json()
    leader = max(q3["rows"], key=lambda r: r[1])
    _endpoint_with_a_little_traffic(ws)
    with browser() as b, ui_server(ws.root, tmp_path / "ui.log") as url:
        page = b.new_page(viewport={"width": 1300, "height": 1300})
        page.add_init_script("localStorage.setItem('vite-ui-theme', 'light')")  # the UI's theme switch, set to light
        with evidence(page, tmp_path, "answers_end"):
            page.goto(url + "/")
            shown(page, page.get_by_placeholder("Ask about your data", exact=False))  # the chat is ready

            # The window the question names, and the metric's unit.
            ask(page, "revenue by region in Q3 2026")
            sentence = (f"Revenue by region for Q3 2026 (2026-07-01 to 2026-09-30): {leader[0]} leads with "
                        f"${leader[1] / 1e6:,.1f} M revenue")
            shown(page, page.get_by_text(sentence).first)

            # The chart switches to a table of the rows, and back to bars.
            plot = shown(page, page.locator(".js-plotly-plot").first)
            assert _first_trace_type(page, 0) == "bar"
            click(page, plot.locator(".updatemenu-button", has_text="Table"))
            assert _first_trace_type(page, 0) == "table"
            assert plot.locator(".table .cell-text", has_text=leader[0]).count() >= 1
            plot.scroll_into_view_if_needed()
            screenshot(page, "answers_chart_as_table")
            click(page, plot.locator(".updatemenu-button", has_text="Bar"))
            assert _first_trace_type(page, 0) == "bar"
            screenshot(page, "answers_light")

            # How the endpoint is doing: figures in a table, a latency plot, too little traffic said plainly.
            ask(page, "how is the endpoint doing?")
            health = shown(page, page.locator("table", has_text="Error rate").last)
            assert [h.inner_text().strip() for h in health.locator("th").all()] == [
                "Requests", "Error rate", "Latency p50", "p95", "p99", "Drift"]
            assert health.locator("td").first.inner_text().strip() == "8"
            shown(page, page.get_by_text("Too little traffic for a drift test").first)
            latency = shown(page, page.locator(".js-plotly-plot").nth(1))
            assert page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot'))[1].data[0].x") == [
                "p50", "p95", "p99"]
            latency.scroll_into_view_if_needed()
            health.scroll_into_view_if_needed()
            screenshot(page, "answers_endpoint_health")

            # The same page in the dark theme (as its switch sets it): the charts have no background of their own.
            assert page.evaluate("() => document.documentElement.classList.contains('light')")
            page.evaluate("() => { document.documentElement.classList.remove('light');"
                          " document.documentElement.classList.add('dark'); }")
            plot.scroll_into_view_if_needed()
            screenshot(page, "answers_dark")
            background = page.evaluate("() => getComputedStyle(document.querySelector('.js-plotly-plot .main-svg'))"
                                       ".backgroundColor")
            assert background in ("rgba(0, 0, 0, 0)", "transparent")

"""Answers as a person reads them, in a real browser (`app.py` under Chainlit on a demo workspace, offline planner,
Debian's Chromium through Playwright): the closing sentence names the time window and the metric's unit, the chart
switches to a table of the rows, the table's header and the chart's axis carry the metric's unit, the chosen switch
button stands out and charts read in the light and the dark theme, and "how is the endpoint doing?" shows its
figures in a small table and a plot (with no pie of its percentiles), saying plainly that there was too little
traffic for a drift test.
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


def _luminance(css: str) -> float:
    """WCAG's relative luminance of a computed `rgb(...)` colour."""
    channels = [float(v) / 255 for v in css[css.index("(") + 1:css.index(")")].replace(",", " ").split()[:3]]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _switch_contrast(page, plot) -> tuple[str, float]:
    """The chosen switch button's label, and the contrast of its fill against the page's background (WCAG ratio;
    3 is the least a control needs), after checking that no other button is filled like it."""
    fills = plot.locator(".updatemenu-button rect.updatemenu-item-rect").evaluate_all(
        "rects => rects.map(r => getComputedStyle(r).fill)")
    labels = plot.locator(".updatemenu-button").evaluate_all("bs => bs.map(b => b.textContent)")
    chosen = [i for i, f in enumerate(fills) if fills.count(f) == 1]
    assert len(chosen) == 1, fills  # one button stands out
    page_bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    lighter, darker = sorted((_luminance(fills[chosen[0]]), _luminance(page_bg)), reverse=True)
    return labels[chosen[0]].strip(), (lighter + 0.05) / (darker + 0.05)


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
            table = shown(page, page.locator("table", has_text="Region").first)  # the metric's unit in its header
            assert [h.inner_text().strip() for h in table.locator("th").all()] == ["Region", "Revenue (USD)"]

            # The chart switches to a table of the rows, and back to bars.
            plot = shown(page, page.locator(".js-plotly-plot").first)
            assert _first_trace_type(page, 0) == "bar"
            assert plot.locator(".g-ytitle").text_content() == "Revenue (USD)"  # the axis carries the unit too
            assert _switch_contrast(page, plot)[0] == "Bar"
            click(page, plot.locator(".updatemenu-button", has_text="Table"))
            assert _first_trace_type(page, 0) == "table"
            assert plot.locator(".table .cell-text", has_text=leader[0]).count() >= 1
            plot.scroll_into_view_if_needed()
            screenshot(page, "answers_chart_as_table")
            page.mouse.move(0, 0)
            assert _switch_contrast(page, plot)[0] == "Table"
            click(page, plot.locator(".updatemenu-button", has_text="Bar"))
            assert _first_trace_type(page, 0) == "bar"
            page.mouse.move(0, 0)  # off the buttons: a hovered button has its own look
            chosen, contrast = _switch_contrast(page, plot)
            assert chosen == "Bar" and contrast >= 3, contrast  # clearly highlighted on the light page
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
            # Percentiles are not parts of a whole: no pie is offered for them.
            assert latency.locator(".updatemenu-button").evaluate_all("bs => bs.map(b => b.textContent)") == [
                "Table", "Bar", "Line"]
            latency.scroll_into_view_if_needed()
            health.scroll_into_view_if_needed()
            screenshot(page, "answers_endpoint_health")

            # The same page in the dark theme (as its switch sets it): the charts have no background of their own.
            assert page.evaluate("() => document.documentElement.classList.contains('light')")
            page.evaluate("() => { document.documentElement.classList.remove('light');"
                          " document.documentElement.classList.add('dark'); }")
            plot.scroll_into_view_if_needed()
            chosen, contrast = _switch_contrast(page, plot)
            assert chosen == "Bar" and contrast >= 3, contrast  # and on the dark one
            screenshot(page, "answers_dark")
            background = page.evaluate("() => getComputedStyle(document.querySelector('.js-plotly-plot .main-svg'))"
                                       ".backgroundColor")
            assert background in ("rgba(0, 0, 0, 0)", "transparent")

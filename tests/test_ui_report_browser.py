"""Results read like a report, in a real browser (`app.py` under Chainlit on a demo workspace, offline planner,
Debian's Chromium through Playwright): labelled headers and dates at their grain, one closing sentence saying
what was computed, the SQL one click away and formatted, a CSV download of the rows, a chart that switches
between bar, line and pie, and a time series with a category drawn as one line per category.
"""
from __future__ import annotations

import csv
import io

import pytest

from catalog.semantic.query import MetricQuery
from catalog.semantic.runner import run_metric_query
from core.workspace import Workspace
from tests.ui_server import ask, browser, chromium, click, evidence, screenshot, shown, ui_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium() is None, reason="Debian's `chromium` is not installed "
                                 "(apt-get install -y chromium); the browser test needs it")]


def _traces(page, nth: int) -> list[dict]:
    return page.evaluate("(n) => Array.from(document.querySelectorAll('.js-plotly-plot'))[n].data"
                         ".map(t => ({type: t.type, name: t.name, x: t.x}))", nth)


def test_results_read_like_a_report(demo_ws: Workspace, tmp_path):
    ws = demo_ws
    revenue = run_metric_query(ws, MetricQuery(metrics=["revenue"], group_by=["customer__region"])).to_json()
    leader = max(revenue["rows"], key=lambda r: r[1])[0]
    with browser() as b, ui_server(ws.root, tmp_path / "ui.log") as url:
        page = b.new_page(viewport={"width": 1300, "height": 1400}, accept_downloads=True)
        with evidence(page, tmp_path, "report_time_series"):
            page.goto(url + "/")
            page.wait_for_load_state("networkidle")  # the box shows before the session connects
            shown(page, page.get_by_placeholder("Ask about your data", exact=False))  # the chat is ready
            ask(page, "revenue by region")
            table = shown(page, page.locator("table", has_text="Region").first)
            assert [h.inner_text().strip() for h in table.locator("th").all()] == ["Region", "Revenue (USD)"]
            shown(page, page.get_by_text(f"{leader} leads with").first)  # the closing sentence
            assert "columns:" not in page.locator("body").inner_text()

            # The rows as CSV, headers as shown, numbers raw.
            with page.expect_download() as got:
                click(page, page.get_by_text("region_revenue.csv").first)
            rows = list(csv.reader(io.StringIO(got.value.path().read_text())))
            assert rows[0] == ["Region", "Revenue (USD)"]
            assert sorted((r[0], float(r[1])) for r in rows[1:]) == sorted((r[0], r[1]) for r in revenue["rows"])

            # The SQL, one click away, one clause a line.
            click(page, page.locator("button", has_text="SQL").last)
            sql = shown(page, page.locator("code", has_text="GROUP BY").last)
            assert "\nGROUP BY" in sql.inner_text()

            # Bars switch to a pie and back to lines.
            shown(page, page.locator(".js-plotly-plot").first)
            assert {t["type"] for t in _traces(page, 0)} == {"bar"}
            click(page, page.locator(".js-plotly-plot").first.locator(".updatemenu-button", has_text="Pie"))
            assert {t["type"] for t in _traces(page, 0)} == {"pie"}
            click(page, page.locator(".js-plotly-plot").first.locator(".updatemenu-button", has_text="Line"))
            assert {t["type"] for t in _traces(page, 0)} == {"scatter"}
            screenshot(page, "report_switch_and_sql", full_page=True)

            # A time axis and a category: a line per region, months at their grain.
            ask(page, "revenue by region by month")
            shown(page, page.locator(".js-plotly-plot").nth(1))
            traces = _traces(page, 1)
            assert sorted(t["name"] for t in traces) == sorted(r[0] for r in revenue["rows"])
            assert all(len(x) == 7 and x[4] == "-" for t in traces for x in t["x"])  # "2025-03"
            page.locator(".js-plotly-plot").nth(1).scroll_into_view_if_needed()

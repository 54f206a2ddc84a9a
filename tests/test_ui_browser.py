"""The chat UI in a real browser: `app.py` under Chainlit (as `lathe ui` runs it) on a demo workspace, driven by
Debian's Chromium through Playwright.

Starts on an empty chat offering starters drawn from the workspace, with a footer that says no LLM plans; asks SQL
and a metric question and sees the rows and a chart; asks for a derived table, sees its plan once with its SQL as a
code block, clicks Approve and sees it made; drops a CSV whose table exists and approves its replacement; restarts the app, finds the
thread, its history and the plan still waiting (once), edits its name in the step's form and approves it; drops a CSV into the chat and
queries the table it became.
The first run has no LLM (the offline planner); the restarted one plans with the scripted LLM, a real
OpenAI-compatible server.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.channels.markdown_views import cell_text
from agent.session import Session
from catalog.results import json_value
from catalog.semantic.query import MetricQuery
from catalog.semantic.runner import run_metric_query
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from core.workspace import Workspace
from tests.scripted_llm import ScriptedLLM, call
from tests.ui_server import ask, browser, chromium, click, evidence, screenshot, shown, ui_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium() is None, reason="Debian's `chromium` is not installed "
                                 "(apt-get install -y chromium); the browser test needs it")]

REGIONS_SQL = "SELECT region, count(*) AS customers FROM customers GROUP BY region ORDER BY region"


def _rows(table) -> list[list[str]]:
    return [[c.inner_text().strip() for c in r.locator("td").all()] for r in table.locator("tbody tr").all()]


def _tables(ws: Workspace) -> set[str]:
    with connect_reader(ws) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _count(ws: Workspace, table: str) -> int:
    with connect_reader(ws) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _first_run(page, url: str, ws: Workspace, regions: list[list[str]], by_region: list[list[str]]) -> None:
    page.goto(url + "/")
    shown(page, page.get_by_placeholder("no LLM is configured", exact=False))  # the message box says who plans
    for starter in ("Revenue by region", "Who owns order_items?", "Save revenue by region as a table",
                    "Fine-tune tiny-llama on reply_preferences"):
        shown(page, page.get_by_text(starter, exact=True))
    screenshot(page, "empty_chat_starters")

    ask(page, REGIONS_SQL)  # SQL typed directly runs on the safe path
    table = page.locator("table", has_text="customers").first
    shown(page, table)
    shown(page, page.get_by_text("No LLM is configured: the offline planner answers"))  # the footer says it too
    assert page.get_by_text("LLMs can make mistakes").count() == 0
    assert _rows(table) == regions

    ask(page, "revenue by region")  # a metric question: rows from the semantic layer and a bar chart
    table = page.locator("table", has_text="Revenue").first
    shown(page, table)
    assert sorted(_rows(table)) == by_region and len(by_region) == 4
    shown(page, page.locator(".js-plotly-plot").nth(1))  # the first chart is the SQL's

    # A write waits for approval; Approve runs it and the answer says so.
    ask(page, "create a table of revenue by region named revenue_by_region")
    shown(page, page.get_by_text("Waiting for your approval").first)
    assert page.get_by_text("so it waits for approval").count() == 1  # the plan's summary is not said again
    shown(page, page.locator("pre", has_text="LEFT JOIN customers AS customer"))  # its SQL, formatted
    # The decisions lead the message's buttons, ahead of its copy and feedback icons.
    approve = page.locator("button[id^='lathe-act-approve_plan']")
    first_in_page = page.locator(":has(> button[id^='lathe-act-approve_plan']) > button").first  # copy, by default
    assert approve.bounding_box()["x"] < first_in_page.bounding_box()["x"]
    screenshot(page, "plan_waiting")
    assert "revenue_by_region" not in _tables(ws)
    click(page, page.get_by_role("button", name="Approve"))
    shown(page, page.get_by_text("created table revenue_by_region").filter(visible=True).first)

    # A CSV whose table exists is not imported: its replacement is a plan that waits for Approve.
    agents = ws.root.parent / "support_agents.csv"
    agents.write_text("agent_id,agent_name,team,hired_on\n1,Ann Lee,tier1,2024-01-02\n2,Bo Park,billing,2024-03-04\n")
    page.locator("#upload-button-input").set_input_files(str(agents))
    shown(page, page.get_by_text(agents.name).first)
    ask(page, "SELECT count(*) AS agents FROM support_agents")
    shown(page, page.get_by_text("table support_agents already exists").first)
    shown(page, page.get_by_text("replaces table support_agents").first)
    assert _count(ws, "support_agents") > 2
    click(page, page.get_by_role("button", name="Approve"))
    shown(page, page.get_by_text("table support_agents: replaced").filter(visible=True).first)
    assert _count(ws, "support_agents") == 2
    assert CatalogStore(ws).load_table("support_agents").description.startswith("The support team")

    # A second write is left waiting when the app stops.
    ask(page, "save orders by status as a table named orders_by_status")
    shown(page, page.get_by_text("creates table orders_by_status").first)
    shown(page, page.get_by_role("button", name="Approve"))
    assert page.get_by_text("Waiting for your approval").count() == 1  # the first one was decided


def _second_run(page, url: str, llm: ScriptedLLM, thread_id: str, title: str, by_region: list[list[str]],
                upload: Path) -> None:
    page.goto(url + "/")
    shown(page, page.get_by_text("Planning with the LLM openai/scripted"))
    # A plan waiting in another thread is offered on the start page too.
    shown(page, page.get_by_text(f"Waiting for your approval in “{title}”"))

    # A CSV dropped into the chat becomes a catalogued table that the same message can query.
    page.locator("#upload-button-input").set_input_files(str(upload))
    shown(page, page.get_by_text(upload.name).first)
    ask(page, "SELECT region, target FROM regional_targets ORDER BY region")
    shown(page, page.get_by_text("table regional_targets: created, 2 rows, 2 columns"))
    table = page.locator("table", has_text="target").first
    shown(page, table)
    assert _rows(table) == [["EMEA", "120"], ["NA", "95"]]

    ask(page, "how much revenue per region?")
    table = page.locator("table", has_text="Revenue").first
    shown(page, table)
    assert sorted(_rows(table)) == by_region
    assert len(llm.requests) == 1

    click(page, page.locator(f"#thread-{thread_id} a"))  # from the thread list, as a person would
    shown(page, page.get_by_text("revenue by region", exact=True).first)
    shown(page, page.get_by_text("Waiting for your approval").first)  # the resumed plan is drawn after the thread
    assert page.get_by_text("Waiting for your approval").count() == 1  # the resumed plan, once, with its buttons
    assert page.get_by_text("create table orders_by_status from that query").count() == 1  # its summary, once
    click(page, page.get_by_role("button", name="Edit").first)
    name = shown(page, page.locator("input[name='name']"))  # a form of the step's arguments
    name.fill("orders_per_status")
    screenshot(page, "plan_edit_form")
    click(page, page.get_by_role("button", name="Save the edit"))
    shown(page, page.get_by_text("creates table orders_per_status").first)
    shown(page, page.get_by_text("Create table orders_per_status").first)  # the step's headline follows the edit
    click(page, page.get_by_role("button", name="Approve").first)
    shown(page, page.get_by_text("created table orders_per_status").filter(visible=True).first)


def test_ask_approve_restart_and_resume(demo_ws: Workspace, tmp_path):
    ws = demo_ws
    with connect_reader(ws) as con:
        regions = [[r[0], cell_text(r[1])] for r in con.execute(REGIONS_SQL).fetchall()]
    revenue = run_metric_query(ws, MetricQuery(metrics=["revenue"], group_by=["customer__region"]))
    by_region = sorted([cell_text(v) for v in r] for r in revenue.to_json()["rows"])
    log = tmp_path / "ui.log"

    # No LLM configured: the offline planner answers, as on a first start.
    with browser() as b, ui_server(ws.root, log) as url:
        page = b.new_page(viewport={"width": 1300, "height": 1000})
        with evidence(page, tmp_path, "first_run"):
            _first_run(page, url, ws, regions, by_region)

    assert "revenue_by_region" in _tables(ws) and "orders_by_status" not in _tables(ws)
    with connect_reader(ws) as con:
        made = con.execute("SELECT customer__region, revenue FROM revenue_by_region").fetchall()
    assert sorted([cell_text(a), cell_text(json_value(b))] for a, b in made) == by_region
    threads = Session.threads(ws)
    assert len(threads) == 1 and threads[0].turns == 6 and REGIONS_SQL.startswith(threads[0].title.rstrip("…"))
    thread_id, title = threads[0].thread_id, threads[0].title
    assert (ws.root / "ui" / ".chainlit" / "config.toml").exists()  # Chainlit's files stay in the workspace

    upload = tmp_path / "regional_targets.csv"
    upload.write_text("region,target\nEMEA,120\nNA,95\n")

    # Restarted with an LLM (the scripted server): the thread is listed, its history replays, and its
    # waiting plan is edited and approved there.
    with ScriptedLLM() as llm, browser() as b:
        llm.push(call("query_metrics", say="Revenue by customer region, from the semantic layer.",
                      metrics=["revenue"], group_by=["customer__region"], order_by=["customer__region"]))
        with ui_server(ws.root, log, env={"LATHE_MODEL": "openai/scripted", "LATHE_API_BASE": llm.url}) as url:
            page = b.new_page(viewport={"width": 1300, "height": 1000})
            with evidence(page, tmp_path, "second_run"):
                _second_run(page, url, llm, thread_id, title, by_region, upload)
        assert len(llm.requests) == 1  # deciding never asks the LLM

    assert "orders_per_status" in _tables(ws) and "orders_by_status" not in _tables(ws)
    assert CatalogStore(ws).load_table("regional_targets").row_count == 2
    with Session(ws, thread_id) as s:
        assert s.pending() is None
        assert [t.role for t in s.history()].count("user") == 6  # the replacement's request is one

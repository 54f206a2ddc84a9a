"""What a thread showed is there when it is reopened, in a real browser (`app.py` under Chainlit on a demo
workspace, offline planner, Debian's Chromium through Playwright): a chart and an uploaded file's bubble come
back from the workspace's `ui/elements/`; a thread started by an upload alone is named after its file and
listed at once; a thread started in the terminal is listed with its turns, and a later terminal turn follows.
"""
from __future__ import annotations

import pytest

from agent.session import Session
from core.workspace import Workspace
from tests.ui_server import ask, browser, chromium, click, evidence, screenshot, shown, ui_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium() is None, reason="Debian's `chromium` is not installed "
                                 "(apt-get install -y chromium); the browser test needs it")]


def test_reopened_threads_show_charts_uploads_and_terminal_turns(demo_ws: Workspace, tmp_path):
    ws, log = demo_ws, tmp_path / "ui.log"
    upload = tmp_path / "regional_targets.csv"
    upload.write_text("region,target\nEMEA,120\nNA,95\n")
    with browser() as b, ui_server(ws.root, log) as url:
        page = b.new_page(viewport={"width": 1300, "height": 1000})
        with evidence(page, tmp_path, "history_reopened"):
            page.goto(url + "/")
            shown(page, page.get_by_placeholder("Ask about your data", exact=False))  # the chat is ready
            ask(page, "revenue by region")
            shown(page, page.locator(".js-plotly-plot").first)
            (charted,) = Session.threads(ws)

            # A file sent with no text starts a thread named after it, in the list at once. The message box shows
            # before the chat's session is connected, and a file uploaded before that is refused: the page's
            # requests settle first (its session connects through them).
            page.goto(url + "/")
            page.wait_for_load_state("networkidle")
            page.locator("#upload-button-input").set_input_files(str(upload))
            click(page, page.locator("#chat-submit"))
            shown(page, page.get_by_text("table regional_targets: created").first)
            shown(page, page.locator("#thread-history").get_by_text("Upload: regional_targets.csv"))
            uploaded_url = page.url

            # A thread started in the terminal (as `lathe ask` does) is listed, and opens with its turns.
            with Session(ws) as terminal:
                list(terminal.send("SELECT count(*) AS orders_seen FROM orders"))
                cli_thread = terminal.thread_id
            page.goto(url + "/")
            click(page, page.locator(f"#thread-{cli_thread} a"))
            shown(page, page.get_by_text("SELECT count(*) AS orders_seen FROM orders").last)
            with Session(ws, cli_thread) as terminal:  # a later turn there is appended here
                list(terminal.send("SELECT count(*) AS products_seen FROM products"))
            page.goto(url + "/")
            click(page, page.locator(f"#thread-{cli_thread} a"))
            shown(page, page.get_by_text("SELECT count(*) AS products_seen FROM products").last)
            first_question = "SELECT count(*) AS orders_seen FROM orders"
            in_list = page.locator("#thread-history").get_by_text(first_question).count()
            assert page.get_by_text(first_question).count() - in_list == 1  # not drawn twice

            # Reopened after all that, the first thread still has its chart, the upload thread its file.
            page.goto(url + "/")
            click(page, page.locator(f"#thread-{charted.thread_id} a"))
            shown(page, page.locator(".js-plotly-plot").first)
            screenshot(page, "history_chart_reopened")
            page.goto(uploaded_url)
            shown(page, page.get_by_text("regional_targets.csv").first)
            shown(page, page.get_by_text("table regional_targets: created").first)
    assert list((ws.root / "ui" / "elements").rglob("*"))  # the elements' files live in the workspace

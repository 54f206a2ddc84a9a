"""A team in the real browser: an analyst, an approver and a viewer sign in with their passwords, side by side.
The analyst's write plan waits; the approver decides it from the plans waiting for them; the analyst's open
thread shows the result by itself; the viewer sees none of the analyst's threads and cannot write."""
from __future__ import annotations

from pathlib import Path

import pytest

from catalog.warehouse import connect_reader
from catalog.workspace_setup import init_workspace
from core.users import UserStore
from core.workspace import Workspace
from tests.ui_server import ask, browser, chromium, click, evidence, shown, ui_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium() is None, reason="Debian's `chromium` is not installed "
                                 "(apt-get install -y chromium); the browser test needs it")]

PASSWORD = "a long password"


def _sign_in(b, url: str, name: str, log: Path):
    page = b.new_context(viewport={"width": 1300, "height": 1000}).new_page()
    page.goto(url + "/")
    shown(page, page.locator("#email"), log).fill(name)
    page.locator("#password").fill(PASSWORD)
    click(page, page.get_by_role("button", name="Sign In"), log)
    shown(page, page.get_by_placeholder("Ask about your data", exact=False), log)  # signed in, the chat is ready
    return page


def _tables(ws: Workspace) -> set[str]:
    with connect_reader(ws) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_analyst_asks_approver_approves_viewer_sees_nothing_of_theirs(tmp_path):
    ws = Workspace(tmp_path / "ws")
    init_workspace(ws, demo=True, scale=0.1)
    users = UserStore(ws)
    for name, role in (("ana", "analyst"), ("carol", "approver"), ("vic", "viewer")):
        users.add(name, [role], PASSWORD)
    log = tmp_path / "ui.log"
    with browser() as b, ui_server(ws.root, log) as url:
        page = b.new_context().new_page()
        page.goto(url + "/")
        shown(page, page.locator("#email"), log).fill("ana")  # a workspace with users asks everyone to sign in
        page.locator("#password").fill("not the password")
        click(page, page.get_by_role("button", name="Sign In"), log)
        shown(page, page.get_by_text("Unable to sign in"), log)

        ana = _sign_in(b, url, "ana", log)
        with evidence(ana, tmp_path, "analyst_waiting"):
            ask(ana, "create a table of revenue by region named revenue_by_region", log)
            shown(ana, ana.get_by_text("Waiting for approval by").first, log)
            click(ana, ana.get_by_role("button", name="Approve").first, log)  # an analyst's press is refused
            shown(ana, ana.get_by_text("may not approve this plan").first, log)
            assert "revenue_by_region" not in _tables(ws)
            assert ana.get_by_text("named revenue_by_region").count() >= 1  # in ana's own thread list

        carol = _sign_in(b, url, "carol", log)
        with evidence(carol, tmp_path, "approver_waiting_view"):
            shown(carol, carol.get_by_text("Waiting for your approval in").first, log)
        with evidence(carol, tmp_path, "approver_approved"):
            click(carol, carol.get_by_role("button", name="Approve").first, log)
            shown(carol, carol.get_by_text("created table revenue_by_region").filter(visible=True).first, log)
            assert "revenue_by_region" in _tables(ws)

        with evidence(ana, tmp_path, "analyst_result"):
            shown(ana, ana.get_by_text("The plan was approved by carol"), log)
            shown(ana, ana.get_by_text("created table revenue_by_region").filter(visible=True).first, log)

        vic = _sign_in(b, url, "vic", log)
        with evidence(vic, tmp_path, "viewer_refused"):
            ask(vic, "create a table of revenue by region named vic_copy", log)
            shown(vic, vic.get_by_text("is a viewer").first, log)
            assert "vic_copy" not in _tables(ws)
            # By now vic's own thread is listed; ana's is not, and nothing waits for a viewer.
            assert vic.get_by_text("Waiting for").count() == 0
            assert vic.get_by_text("named revenue_by_region").count() == 0

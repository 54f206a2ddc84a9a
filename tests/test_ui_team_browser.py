"""A team in the real browser: an analyst, an approver and a viewer sign in with their passwords, side by side.
The analyst's write plan waits; the approver decides it from the plans waiting for them; the analyst's open
thread shows the result by itself; the viewer sees none of the analyst's threads and cannot write."""
from __future__ import annotations

import pytest

from catalog.warehouse import connect_reader
from catalog.workspace_setup import init_workspace
from core.users import UserStore
from core.workspace import Workspace
from tests.ui_server import browser, chromium, ui_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium() is None, reason="Debian's `chromium` is not installed "
                                 "(apt-get install -y chromium); the browser test needs it")]

WAIT_MS = 120_000
PASSWORD = "a long password"


def _sign_in(b, url: str, name: str):
    page = b.new_context(viewport={"width": 1300, "height": 1000}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url + "/")
    page.locator("#email").wait_for(timeout=WAIT_MS)
    page.locator("#email").fill(name)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.get_by_text("Lathe on workspace").first.wait_for(timeout=WAIT_MS)
    return page


def _ask(page, text: str) -> None:
    page.locator("#chat-input").fill(text)
    page.locator("#chat-submit").click()


def _tables(ws: Workspace) -> set[str]:
    with connect_reader(ws) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_analyst_asks_approver_approves_viewer_sees_nothing_of_theirs(tmp_path):
    ws = Workspace(tmp_path / "ws")
    init_workspace(ws, demo=True, scale=0.1)
    users = UserStore(ws)
    for name, role in (("ana", "analyst"), ("carol", "approver"), ("vic", "viewer")):
        users.add(name, [role], PASSWORD)
    with browser() as b, ui_server(ws.root, tmp_path / "ui.log") as url:
        page = b.new_context().new_page()
        page.goto(url + "/")
        page.locator("#email").wait_for(timeout=WAIT_MS)  # a workspace with users asks everyone to sign in
        page.locator("#email").fill("ana")
        page.locator("#password").fill("not the password")
        page.get_by_role("button", name="Sign In").click()
        page.get_by_text("Unable to sign in").wait_for(timeout=WAIT_MS)

        ana = _sign_in(b, url, "ana")
        _ask(ana, "create a table of revenue by region named revenue_by_region")
        ana.get_by_text("Waiting for approval by").first.wait_for(timeout=WAIT_MS)
        ana.get_by_role("button", name="Approve").first.click()  # an analyst's press is refused
        ana.get_by_text("may not approve this plan").first.wait_for(timeout=WAIT_MS)
        assert "revenue_by_region" not in _tables(ws)
        ana.screenshot(path=str(tmp_path / "analyst_waiting.png"))

        assert ana.get_by_text("named revenue_by_region").count() >= 1  # in ana's own thread list
        carol = _sign_in(b, url, "carol")
        carol.get_by_text("Waiting for your approval in").first.wait_for(timeout=WAIT_MS)
        carol.screenshot(path=str(tmp_path / "approver_waiting_view.png"))
        carol.get_by_role("button", name="Approve").first.click()
        carol.get_by_text("created table revenue_by_region").filter(visible=True).first.wait_for(timeout=WAIT_MS)
        assert "revenue_by_region" in _tables(ws)

        ana.get_by_text("The plan was approved by carol").wait_for(timeout=WAIT_MS)
        ana.get_by_text("created table revenue_by_region").filter(visible=True).first.wait_for(timeout=WAIT_MS)
        ana.screenshot(path=str(tmp_path / "analyst_result.png"))

        vic = _sign_in(b, url, "vic")
        assert vic.get_by_text("Waiting for").count() == 0
        assert vic.get_by_text("named revenue_by_region").count() == 0  # ana's thread is not in vic's list
        _ask(vic, "create a table of revenue by region named vic_copy")
        vic.get_by_text("is a viewer").first.wait_for(timeout=WAIT_MS)
        vic.screenshot(path=str(tmp_path / "viewer_refused.png"))
        assert "vic_copy" not in _tables(ws)

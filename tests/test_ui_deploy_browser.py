"""A deployment from the chat UI, in a real browser (`app.py` under Chainlit on a demo workspace with an approved
LoRA version, offline planner, Debian's Chromium through Playwright): after Approve, the answer shows the
endpoint's URL, model and API key with ready `curl` and `openai` snippets; the key works; reloading the thread
shows it redacted, and neither the agent's checkpoint nor the UI's history holds it.
"""
from __future__ import annotations

import re

import pytest

from core.workspace import Workspace
from tests.serving_models import tiny_adapter
from tests.ui_server import ask, browser, chromium, click, evidence, screenshot, shown, ui_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium() is None, reason="Debian's `chromium` is not installed "
                                 "(apt-get install -y chromium); the browser test needs it")]


def _approved_version(ws: Workspace) -> None:
    from runtimes.models.registry import decide, register_version

    adapter = tiny_adapter(ws.root / "models" / "base" / "tiny-qwen3", ws.root / "runs" / "j1" / "model")
    register_version(ws, "tiny-qwen3-sft", str(adapter), None,
                     {"job_id": "j1", "base_model": "tiny-qwen3", "technique": "sft",
                      "dataset_sql": 'SELECT * FROM "reply_preferences"'})
    decide(ws, "tiny-qwen3-sft", "1", "approved", "dana")


def test_a_deployment_shows_its_key_once(demo_ws: Workspace, tmp_path):
    import openai

    from runtimes.serving.endpoints.deploy import list_endpoints, stop

    ws = demo_ws
    _approved_version(ws)
    try:
        with browser() as b, ui_server(ws.root, tmp_path / "ui.log") as url:
            page = b.new_page(viewport={"width": 1300, "height": 1100})
            with evidence(page, tmp_path, "deploy_key_after_reload"):
                page.goto(url + "/")
                shown(page, page.get_by_placeholder("Ask about your data", exact=False))  # the chat is ready
                ask(page, "deploy the approved tiny-qwen3-sft model as serverless")
                shown(page, page.get_by_text("Waiting for your approval").first)
                click(page, page.get_by_role("button", name="Approve", exact=True))
                shown(page, page.get_by_text("Copy the key now").first, ws.root / "runs")  # the endpoint's log moves
                text = page.locator("body").inner_text()
                (key,) = set(re.findall(r"lathe-[A-Za-z0-9_\-]{20,}", text))
                (endpoint,) = list_endpoints(ws)
                assert endpoint.url in text and "tiny-qwen3-sft@1" in text
                assert f"curl {endpoint.url}/chat/completions" in text and "from openai import OpenAI" in text
                screenshot(page, "deploy_key_shown_once", full_page=True)
                client = openai.OpenAI(base_url=endpoint.url, api_key=key, max_retries=0)
                assert [m.id for m in client.models.list().data] == ["tiny-qwen3-sft@1"]

                page.reload()  # the same thread, drawn from the history
                shown(page, page.get_by_text("The key was shown once").first)
                assert key not in page.locator("body").inner_text()
                assert f"{key[:4]}…{key[-4:]}" in page.locator("body").inner_text()
        for kept in (ws.state_path, ws.root / "ui" / "chat_history.sqlite"):
            assert key.encode() not in kept.read_bytes(), kept
    finally:
        for e in list_endpoints(ws):
            if e.status in ("running", "idle", "starting"):
                stop(ws, e.name)

"""The chat UI follows a fine-tuning job it started, in a real browser: `app.py` under Chainlit on a demo workspace
(offline planner), driven by Debian's Chromium through Playwright. Approving the plan starts a real tiny DPO job;
a progress message follows it; the page is reloaded while the job runs and the thread, opened again from the
thread list, follows it to `succeeded`; then the evaluation report arrives with the curves as an image, the
registered version and how to approve it, while the chat stays usable."""
from __future__ import annotations

import pytest

from agent.session import Session
from core.workspace import Workspace
from runtimes.jobs.store import JobStore
from tests.ui_server import ask, browser, chromium, click, evidence, shown, ui_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium() is None, reason="Debian's `chromium` is not installed "
                                 "(apt-get install -y chromium); the browser test needs it")]

STEPS = 150


def test_a_job_started_from_the_chat_is_followed_to_its_report(demo_ws: Workspace, tmp_path):
    ws, runs = demo_ws, demo_ws.root / "runs"  # the job's run folder shows its progress while the page is still
    with browser() as b, ui_server(ws.root, tmp_path / "ui.log") as url:
        page = b.new_page(viewport={"width": 1300, "height": 1000})
        with evidence(page, tmp_path, "job_progress"):
            page.goto(url + "/")
            shown(page, page.get_by_text("No LLM is configured"), runs)
            # Enough steps (about half a minute here) that the reload below lands while the job runs.
            ask(page, f"fine-tune tiny-qwen3 with dpo on reply_preferences max_steps={STEPS} max_length=64", runs)
            shown(page, page.get_by_text("Waiting for your approval").first, runs)
            click(page, page.get_by_role("button", name="Approve"), runs)
            shown(page, page.get_by_text(" — running · ").first, runs)  # the progress message

            (job,) = JobStore(ws).list()
            (thread,) = Session.threads(ws)
            page.goto(url + "/")  # a reload: a new chat page; the job goes on
            click(page, page.locator(f"#thread-{thread.thread_id} a"), runs)  # the thread again, from the thread list
            assert JobStore(ws).get(job.id).status == "running"  # resumed before the job ended, so it can show
            shown(page, page.get_by_text("Evaluation of job"), runs)
            assert JobStore(ws).get(job.id).status == "succeeded"
            # The resumed thread's progress message, rewritten in place, ends at the job's final state.
            progress = page.get_by_text(f"Job {job.id} — ").last
            assert "succeeded" in progress.inner_text() and f"{STEPS}/{STEPS}" in progress.inner_text()
            shown(page, page.get_by_text("preference accuracy, tuned", exact=True).first, runs)  # a figure's row
            shown(page, page.get_by_text("Registered tiny-qwen3-dpo/1, pending approval."), runs)
            shown(page, page.get_by_text("lathe models approve tiny-qwen3-dpo 1"), runs)
            shown(page, page.locator(f"img[alt='{job.id} curves']"), runs)

            ask(page, "SELECT count(*) AS jobs_seen FROM reply_preferences", runs)  # the chat is free again
            shown(page, page.locator("table", has_text="jobs seen").first, runs)

            # Reopened later, the thread still shows the curves (kept as a file in the workspace's ui/ folder).
            page.goto(url + "/")
            click(page, page.locator(f"#thread-{thread.thread_id} a"), runs)
            curves = shown(page, page.locator(f"img[alt='{job.id} curves']").first, runs)
            page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=curves.element_handle())

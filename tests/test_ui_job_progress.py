"""The chat UI follows a fine-tuning job it started, in a real browser: `app.py` under Chainlit on a demo workspace
(offline planner), driven by Debian's Chromium through Playwright. Approving the plan starts a real tiny DPO job;
one progress message follows it (step of steps, times, the loss curve); the page is reloaded while the job runs and
the thread, opened again from the thread list, follows it to `succeeded` in that same message, never a second one;
then the evaluation report arrives with the curves as an image, the duration against the plan's estimate and a
button approving the registered version, while the chat stays usable and answers “how is the job doing?” with its
figures formatted by what they are."""
from __future__ import annotations

import re

import pytest

from agent.session import Session
from core.workspace import Workspace
from runtimes.jobs.store import JobStore
from runtimes.models.registry import get_version
from tests.ui_server import ask, browser, chromium, click, evidence, screenshot, shown, ui_server

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
            shown(page, page.get_by_placeholder("no LLM is configured", exact=False), runs)  # who plans
            # Enough steps (about half a minute here) that the reload below lands while the job runs.
            ask(page, f"fine-tune tiny-qwen3 with dpo on reply_preferences max_steps={STEPS} max_length=64", runs)
            shown(page, page.get_by_text("Waiting for your approval").first, runs)
            click(page, page.get_by_role("button", name="Approve"), runs)
            # The progress message, once the job has trained a few steps: where it is, its times, its loss curve.
            shown(page, page.get_by_text("loss curve").first, runs)
            (job,) = JobStore(ws).list()
            assert f"of {STEPS} · " in page.get_by_text(f"Job {job.id} — running").inner_text()
            shown(page, page.get_by_text(" left · the plan estimated ").first, runs)  # elapsed, left, estimated
            screenshot(page, "job_progress_running")

            (thread,) = Session.threads(ws)
            page.goto(url + "/")  # a reload: a new chat page; the job goes on
            click(page, page.locator(f"#thread-{thread.thread_id} a"), runs)  # the thread again, from the thread list
            assert JobStore(ws).get(job.id).status == "running"  # resumed before the job ended, so it can show
            shown(page, page.get_by_text("Evaluation of job"), runs)
            assert JobStore(ws).get(job.id).status == "succeeded"
            # One progress message, the one shown before the reload, rewritten in place to the job's final state.
            progress = page.get_by_text(f"Job {job.id} — ")
            assert progress.count() == 1, progress.all_inner_texts()
            assert f"succeeded · " in progress.inner_text() and f"step {STEPS} of {STEPS}" in progress.inner_text()
            shown(page, page.get_by_text("; the plan estimated ").first, runs)  # the time against the estimate
            shown(page, page.get_by_text("preference accuracy, tuned", exact=True).first, runs)  # a figure's row
            shown(page, page.get_by_text("Registered tiny-qwen3-dpo/1, pending approval."), runs)
            shown(page, page.get_by_text("lathe models approve tiny-qwen3-dpo 1"), runs)
            shown(page, page.locator(f"img[alt='{job.id} curves']"), runs)
            # The local user may approve: the report's button approves the version through the registry.
            click(page, page.get_by_role("button", name="Approve tiny-qwen3-dpo v1"), runs)
            shown(page, page.get_by_text("is approved by").first, runs)
            assert get_version(ws, "tiny-qwen3-dpo", 1).approval == "approved"
            screenshot(page, "job_report_approved")

            ask(page, "SELECT count(*) AS jobs_seen FROM reply_preferences", runs)  # the chat is free again
            shown(page, page.locator("table", has_text="jobs seen").first, runs)

            # Reopened later, the thread still shows the curves (kept as a file in the workspace's ui/ folder).
            page.goto(url + "/")
            click(page, page.locator(f"#thread-{thread.thread_id} a"), runs)
            curves = shown(page, page.locator(f"img[alt='{job.id} curves']").first, runs)
            assert page.get_by_text(f"Job {job.id} — ").count() == 1
            page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=curves.element_handle())

            ask(page, "how is the job doing?", runs)  # in the reopened thread
            # Each figure reads as what it is: a learning rate in scientific notation, a count of tokens whole.
            rate = shown(page, page.locator("tr", has_text="learning_rate").first, runs)
            assert re.fullmatch(r"\d(\.\d+)?e-\d\d", rate.locator("td").last.inner_text().strip())  # e.g. 3.3e-07
            tokens = page.locator("tr", has_text="num_tokens").first.locator("td").last.inner_text().strip()
            assert tokens.replace(",", "").isdigit(), tokens
            # The answer reads the version's approval from the registry: approved above, not "pending" as when it ended.
            shown(page, page.get_by_text("registered tiny-qwen3-dpo/1 (approved)").first, runs)

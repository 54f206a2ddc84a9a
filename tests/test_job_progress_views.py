"""How a followed job reads: the progress event built from the `job_status` tool's data (one line per state),
the terminal's lines, and the chat UI's progress message and evaluation report (the functions `app.py` renders
with). Plain functions of data: no job runs here (the jobs themselves run in test_agent_finetune_followed)."""
from __future__ import annotations

import io

from rich.console import Console

from agent.channels.job_views import approve_hint, progress_bar, progress_markdown, report_markdown
from cli.chat.terminal import TerminalView
from agent.events import StepFinished, event_from_json
from agent.session import progress_event

RUNNING = {"job_id": "job-1", "status": "running", "step": 3, "max_steps": 4,
           "latest_metrics": {"loss": 2.345678, "reward": 0.25, "tokens_per_s": 12345.6, "learning_rate": 1e-5},
           "evaluation": {}, "report": None, "model_version": None, "error": None}


def _succeeded(tmp_path, curves: bool = True) -> dict:
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "report.json").write_text("{}")
    if curves:
        (folder / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    evaluation = {"loss": 2.1, "eval_loss": 2.25, "compared_rows": 8.0, "base_judge_score": 0.2,
                  "tuned_judge_score": 0.575, "win_rate": 0.75, "judge_failures": 0.0, "steps": 4}
    return {**RUNNING, "status": "succeeded", "step": 4, "evaluation": evaluation,
            "report": str(folder / "report.json"), "model_version": "tiny-qwen3-rlaif/2"}


def test_progress_lines_say_where_the_job_stands():
    running = progress_event(RUNNING)
    assert running.text == "job job-1 is running: step 3 of 4, loss 2.346, reward 0.25, 12,346 tokens/s"
    assert not running.final and running.report is None and running.evaluation == {}
    epochs = progress_event({**RUNNING, "max_steps": -1, "latest_metrics": {}})
    assert epochs.text == "job job-1 is running: step 3" and epochs.max_steps is None
    failed = progress_event({**RUNNING, "status": "failed", "error": "the table has no rows"})
    assert failed.final and failed.error == "the table has no rows"
    assert failed.text == "job job-1 failed at step 3 of 4: the table has no rows"
    assert progress_event({**RUNNING, "status": "cancelled"}).text == "job job-1 was cancelled at step 3 of 4"


def test_the_last_event_carries_the_evaluation_report_and_version(tmp_path):
    done = progress_event(_succeeded(tmp_path))
    assert done.final and done.model_version == "tiny-qwen3-rlaif/2"
    assert done.curves == str(tmp_path / "report" / "curves.png") and done.report.endswith("report.json")
    assert done.text == ("job job-1 succeeded after 4 steps; eval loss 2.25; base judge score 0.2; tuned judge score "
                         "0.575; win rate of tuned over base 75%; registered tiny-qwen3-rlaif/2 (pending approval)")
    assert event_from_json(done.to_json()) == done
    # A report without matplotlib has no PNG: no curves are offered.
    plain = tmp_path / "plain"
    plain.mkdir()
    assert progress_event(_succeeded(plain, curves=False)).curves is None


def test_the_chat_ui_progress_message_and_report(tmp_path):
    assert progress_bar(3, 4) == "`[███████████████░░░░░]` 3/4" and progress_bar(7, None) == "step 7"
    running = progress_markdown(progress_event(RUNNING))
    assert running.startswith("**Job `job-1`** — running · `[")
    assert "latest: loss 2.346 · reward 0.25 · tokens per s 12,346" in running
    failed = progress_markdown(progress_event({**RUNNING, "status": "failed", "error": "out of memory"}))
    assert failed.startswith("**Job `job-1`** — failed") and "**Error:** out of memory" in failed
    waited = progress_markdown(progress_event(RUNNING).model_copy(update={"timed_out": True}))
    assert "Stopped following; the job goes on" in waited

    report = report_markdown(progress_event(_succeeded(tmp_path)))
    assert report.startswith("**Evaluation of job `job-1`** (4 steps)")
    assert "| judge's win rate of tuned over base | 75% |" in report
    assert "| judge score, base | 0.2 |" in report and "| held-out rows compared | 8 |" in report
    assert report.index("eval loss") < report.index("win rate") < report.index("final training loss")
    assert "(the curves are drawn below)" in report
    assert "Registered **tiny-qwen3-rlaif/2**, pending approval." in report
    assert approve_hint("tiny-qwen3-rlaif/2") in report
    assert "`lathe models approve tiny-qwen3-rlaif 2`" in report


def test_the_terminal_prints_progress_and_the_report_and_remembers_started_jobs(tmp_path):
    out = io.StringIO()
    view = TerminalView(Console(file=out, width=400, color_system=None))  # long tmp paths stay on one line
    view.render(StepFinished(step_id="s1", tool="start_finetune", ok=True, text="started job job-1", job_id="job-1"))
    view.render(StepFinished(step_id="s2", tool="job_status", ok=True, text="job job-0 is running"))
    assert view.started_jobs == ["job-1"]  # only the step that started a job is followed
    view.render(progress_event(RUNNING))
    view.render(progress_event(_succeeded(tmp_path)))
    lines = out.getvalue().splitlines()
    assert "job job-1 is running: step 3 of 4, loss 2.346, reward 0.25, 12,346 tokens/s" in lines
    assert "  judge's win rate of tuned over base: 75%" in lines
    assert f"  report: {tmp_path}/report/report.json (curves: {tmp_path}/report/curves.png)" in lines
    assert any(line.startswith("  An approver approves it with lathe models approve tiny-qwen3-rlaif 2")
               for line in lines)

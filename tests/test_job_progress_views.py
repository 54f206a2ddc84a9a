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
    assert progress_bar(3, 4) == "`[███████████████░░░░░]` step 3 of 4" and progress_bar(7, None) == "step 7"
    running = progress_markdown(progress_event(RUNNING))
    assert running.startswith("**Job `job-1`** — running · `[███████████████░░░░░]` step 3 of 4 · 75%")
    assert "latest: loss 2.346 · reward 0.25 · tokens/s 12,346" in running
    # 12 s a step, 1 of 4 steps left: 12 s left at that pace; the plan's estimate beside it; the loss curve's shape.
    timed = progress_event({**RUNNING, "started_at": 1000.0, "finished_at": None, "estimated_duration_s": 65,
                            "step_s": 12.0, "loss_curve": [[1, 2.9], [2, 2.6], [3, 2.3]]})
    timed = timed.model_copy(update={"elapsed_s": 50.0})
    shown = progress_markdown(timed)
    assert "elapsed 50 s · about 12 s left · the plan estimated 1 min 05 s" in shown
    assert "loss curve █▅▁ (steps 1–3)" in shown
    early = timed.model_copy(update={"step": 0, "elapsed_s": 20.0, "step_s": None})
    assert "elapsed 20 s · about 45 s left" in progress_markdown(early)  # before a pace: what the estimate leaves
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
    assert "Took" not in report  # no duration recorded: nothing said about it
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


def test_an_ended_job_reports_its_time_against_the_plans_estimate(tmp_path):
    data = _succeeded(tmp_path)
    data["evaluation"] |= {"duration_estimated_s": 90.0, "duration_actual_s": 72.4, "duration_ratio": 0.804}
    done = progress_event({**data, "started_at": 1000.0, "finished_at": 1080.0})
    said = "Took 1 min 12 s; the plan estimated 1 min 30 s (actual/estimated 0.80)."
    assert said in report_markdown(done) and said in progress_markdown(done)
    assert "estimated seconds" not in report_markdown(done)  # said once, in words, not again as rows
    # A job without its own measure: its time from start to end.
    plain = progress_event({**RUNNING, "status": "failed", "error": "x", "started_at": 1000.0, "finished_at": 1045.0})
    assert "Took 45 s." in progress_markdown(plain)


def test_the_pace_is_measured_from_the_first_logged_step(demo_ws):
    from runtimes.jobs.store import JobStore, Progress
    from tools.job_status import JobStatus

    store = JobStore(demo_ws)
    job = store.create("finetune", {"model": "m", "technique": "sft"}, {"estimated_duration_s": 30},
                       Progress(done=0, total=10, unit="steps"))
    for step in (1, 2, 3):
        store.add_metrics(job.id, 1, step, {"loss": 3.0 - step / 10, "learning_rate": 2e-5, "num_tokens": 1e5 * step})
    data = JobStatus(workspace=demo_ws).run_validated(JobStatus(workspace=demo_ws).schema().model_validate(
        {"job_id": job.id}))
    assert data.data["loss_curve"] == [(1, 2.9), (2, 2.8), (3, 2.7)] and data.data["step_s"] >= 0
    assert data.data["estimated_duration_s"] == 30
    rows = dict(data.result.rows)
    assert rows["learning_rate"] == "2e-05" and rows["num_tokens"] == "300,000"  # "how is the job doing?"


def test_job_figures_are_formatted_by_what_they_are():
    from tools.job_figures import duration_text, figure_text

    cases = {("learning_rate", 2e-05): "2e-05", ("num_tokens", 136987.0): "136,987", ("loss", 0.41213): "0.4121",
             ("epoch", 0.5234): "0.52", ("tokens_per_s", 1234.56): "1,235", ("win_rate", 0.625): "62%",
             ("mean_token_accuracy", 0.81): "81%", ("reward_margin", 0.3): "0.3", ("grad_norm", 12.0): "12",
             ("train_runtime", 75.2): "1 min 15 s", ("total_flos", 3.2e14): "3.2e+14", ("eval_loss", 2.25): "2.25",
             ("step", 40.0): "40", ("kind", "finetune"): "finetune"}
    assert {k: figure_text(*k) for k in cases} == cases
    assert [duration_text(s) for s in (0, 59.6, 61, 3600 * 2 + 240)] == ["0 s", "1 min 00 s", "1 min 01 s", "2 h 04 min"]

"""`lathe ask` and `lathe chat` on a real workspace: answers and tables, JSON events, approval from a later
call, reject with a reason, edit a step's arguments, clear errors, and the exit codes scripts rely on.

Plans that need approval come from the scripted LLM (a real OpenAI-compatible server) or the offline planner.
"""
from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from agent import audit_log
from agent.session import Session
from cli.chat import command as chat_command
from cli.context import set_workspace
from tests.scripted_llm import call
from tests.small_workspace import count_rows, tables_in

REGIONS_SQL = "SELECT region, count(*) AS customers FROM customers GROUP BY region ORDER BY region"
EMEA_SQL = "SELECT * FROM customers WHERE region = 'EMEA'"


def _app() -> typer.Typer:
    """The `lathe` commands under test, wired as `cli/main.py` wires them."""
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def main(workspace: str = typer.Option(None, "--workspace", "-w")) -> None:
        set_workspace(workspace)

    chat_command.register(app)
    return app


@pytest.fixture
def lathe(small_ws, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at the terminal width; keep lines whole for asserts
    runner = CliRunner()
    app = _app()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, ["--workspace", str(small_ws.root), *args], input=input)

    return run


def _events(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _propose(llm, name: str = "emea_customers") -> None:
    llm.push(call("create_derived_table", say="I will save the EMEA customers as a table.", name=name,
                  select_sql=EMEA_SQL, description="EMEA customers"))


def test_ask_prints_the_answer_and_its_table(lathe):
    r = lathe("ask", REGIONS_SQL)
    assert r.exit_code == 0, r.output
    assert "Running your SQL on the warehouse (read-only)." in r.output
    lines = [" ".join(line.replace("│", " ").split()) for line in r.output.splitlines()]
    assert "APAC 1" in lines and "EMEA 3" in lines and "NA 2" in lines
    assert "3 rows" in r.output


def test_ask_json_prints_every_event_as_one_line(lathe, small_ws):
    r = lathe("ask", "--json", REGIONS_SQL)
    assert r.exit_code == 0, r.output
    events = _events(r.output)
    types = [e["type"] for e in events]
    assert types[0] == "text_delta" and types[-1] == "done" and "plan_proposed" in types
    table = next(e for e in events if e["type"] == "table")["table"]
    assert table["columns"] == ["region", "customers"] and table["rows"] == [["APAC", 1], ["EMEA", 3], ["NA", 2]]
    assert next(e for e in events if e["type"] == "chart")["x"] == "region"
    done = events[-1]
    assert done["status"] == "answered"
    assert [t.thread_id for t in Session.threads(small_ws)] == [done["thread_id"]]


@pytest.mark.slow
def test_a_write_waits_with_exit_3_and_a_later_ask_approves_it(lathe, small_ws, llm):
    _propose(llm)
    r = lathe("ask", "--json", "save the EMEA customers as a table")
    assert r.exit_code == chat_command.EXIT_WAITING, r.output
    events = _events(r.output)
    asked = next(e for e in events if e["type"] == "approval_needed")
    assert asked["needs_approval"] == ["s1"] and events[-1]["status"] == "waiting_approval"
    assert "emea_customers" not in tables_in(small_ws)

    thread = events[-1]["thread_id"]
    again = lathe("ask", "--thread", thread, "anything else?")
    assert again.exit_code == 2 and f"a plan waits for approval in thread {thread}" in again.output

    r = lathe("ask", "--thread", thread, "--approve")
    assert r.exit_code == 0, r.output
    assert "created table emea_customers (3 rows" in r.output.replace("`", "")
    assert count_rows(small_ws, "emea_customers") == 3
    assert [e.decision for e in audit_log.entries(small_ws, thread)] == ["approved"]
    assert len(llm.requests) == 1

    r = lathe("ask", "--thread", thread, "--approve")
    assert r.exit_code == 2 and f"no plan waits for approval in thread {thread}" in r.output


def test_ask_with_approve_runs_a_write_in_one_call(lathe, small_ws, llm):
    _propose(llm, name="emea_people")
    r = lathe("ask", "--approve", "--thread", "job-7", "save the EMEA customers as a table")
    assert r.exit_code == 0, r.output
    assert "Waiting for approval" in r.output and "created table emea_people" in r.output.replace("`", "")
    assert count_rows(small_ws, "emea_people") == 3
    assert [t.thread_id for t in Session.threads(small_ws)] == ["job-7"]


def test_ask_explains_what_is_wrong(lathe):
    r = lathe("ask", "   ")
    assert r.exit_code == 2 and "the message is empty" in r.output
    r = lathe("ask")
    assert r.exit_code == 2 and "give a question or SQL" in r.output
    r = lathe("ask", "SELECT nope FROM customers")
    assert r.exit_code == chat_command.EXIT_FAILED
    assert "nope" in r.output and "failed" in r.output


def test_chat_rejects_with_a_reason_then_lists_threads(lathe, small_ws, llm):
    _propose(llm)
    typed = "\n".join([REGIONS_SQL, "save the EMEA customers as a table", "n", "EMEA data stays in the regional "
                       "warehouse", "/threads", "/quit"]) + "\n"
    r = lathe("chat", "--thread", "t-chat", input=typed)
    assert r.exit_code == 0, r.output
    assert "EMEA 3" in " ".join(r.output.replace("│", " ").split())
    assert "Approve this plan? [y]es / [n]o / [e]dit / [l]ater:" in r.output
    assert "Nothing was run: the plan was rejected" in r.output and "(rejected)" in r.output
    assert "emea_customers" not in tables_in(small_ws)
    rows = audit_log.entries(small_ws, "t-chat")
    assert [(e.decision, e.reason) for e in rows] == [("rejected", "EMEA data stays in the regional warehouse")]
    assert "t-chat" in r.output.split("/threads")[-1]  # the thread list
    assert "Continue later with `lathe chat --thread t-chat`" in r.output


def test_chat_edits_a_step_then_approves_the_edited_plan(lathe, small_ws, llm):
    _propose(llm)
    typed = "\n".join(["save the EMEA customers as a table", "e", "{not json", "e",
                       '{"name": "emea_buyers"}', "y", ""]) + "\n"
    r = lathe("chat", input=typed)
    assert r.exit_code == 0, r.output
    assert "the edit of step `s1` is not valid JSON (line 1, column 2" in r.output
    assert "created table emea_buyers (3 rows" in r.output.replace("`", "")
    assert "emea_customers" not in tables_in(small_ws) and count_rows(small_ws, "emea_buyers") == 3
    thread = Session.threads(small_ws)[0].thread_id
    assert [e.decision for e in audit_log.entries(small_ws, thread)] == ["edited", "approved"]


def test_chat_on_a_thread_with_a_waiting_plan_asks_first_and_can_leave_it(lathe, small_ws, llm):
    _propose(llm)
    r = lathe("ask", "--thread", "t-wait", "save the EMEA customers as a table")
    assert r.exit_code == chat_command.EXIT_WAITING
    r = lathe("chat", "--thread", "t-wait", input="l\n/quit\n")
    assert r.exit_code == 0, r.output
    assert "needs approval" in r.output and "The plan keeps waiting in thread t-wait." in r.output
    with Session(small_ws, "t-wait") as s:
        assert s.pending() is not None


def test_chat_ends_cleanly_at_the_end_of_input(lathe):
    r = lathe("chat", input="/help\n")
    assert r.exit_code == 0, r.output
    assert "Commands: /threads" in r.output and "Bye." in r.output


def test_ui_command_keeps_chainlit_files_in_the_workspace(tmp_path):
    from cli.ui_command import APP, chainlit_command

    argv, env, cwd = chainlit_command(tmp_path / "ws", "127.0.0.1", 8123, base_env={"PATH": "/usr/bin"})
    assert argv[-5:] == ["--headless", "--host", "127.0.0.1", "--port", "8123"]
    assert str(APP) in argv and APP.exists()
    assert cwd == tmp_path / "ws" / "ui" and cwd.is_dir()
    assert env["CHAINLIT_APP_ROOT"] == str(cwd) and env["LATHE_HOME"] == str(tmp_path / "ws")
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True" and env["HF_HUB_OFFLINE"] == "1"


def test_the_terminal_formats_answers_like_the_ui():
    from rich.console import Console

    from agent.events import TableEvent, TextDelta
    from agent.state import TableData
    from cli.chat.terminal import TerminalView

    console = Console(record=True, width=100)
    view = TerminalView(console)
    for delta in ("I read this as: metric `rev", "enue`; by `customer__region`."):  # a span across two deltas
        view.render(TextDelta(text=delta))
    view.render(TableEvent(step_id="s1", table=TableData(
        columns=["customer__region", "metric_time__quarter", "revenue", "orders"], row_count=1,
        rows=[["NA", "2026-07-01T00:00:00", 17_612_000.5, 12_345]])))
    out = console.export_text()
    assert "`" not in out and "I read this as: metric revenue; by customer__region." in out
    table = out.split("customer__region.", 1)[1]
    for shown in ("Region", "Quarter", "Revenue", "Orders", "Q3 2026", "17,612,000.50", "12,345"):
        assert shown in table
    assert "customer__region" not in table and "2026-07-01" not in table


def test_a_followed_job_is_one_progress_bar_on_a_terminal():
    import io

    from rich.console import Console

    from agent.session import progress_event
    from cli.chat.terminal import JobBar

    out = io.StringIO()
    bar = JobBar(Console(file=out, force_terminal=True, width=120, color_system=None))
    for step in (1, 3):
        bar.update(progress_event({"job_id": "job-1", "status": "running", "step": step, "max_steps": 4,
                                   "latest_metrics": {"loss": 2.0 - step / 10}, "started_at": None,
                                   "step_s": 10.0}))
    bar.stop()
    drawn = out.getvalue()
    assert "━" in drawn and "\r" in drawn  # a bar, redrawn in place rather than a line per change
    last = drawn.rsplit("\r", 1)[-1]
    assert "job job-1 running" in last and "3/4" in last and "75%" in last and "~10 s left · loss 1.7" in last


def test_the_terminal_shows_units_in_headers_and_shares_in_cells():
    from rich.console import Console

    from agent.events import TableEvent
    from agent.state import TableData
    from cli.chat.terminal import TerminalView

    console = Console(record=True, width=120)
    TerminalView(console).render(TableEvent(
        step_id="s1", labels={"revenue": "Revenue", "return_rate": "Return rate"},
        units={"revenue": "USD", "return_rate": "percent"},
        table=TableData(columns=["customer__region", "revenue", "return_rate"], row_count=1,
                        rows=[["NA", 17_612_000.5, 0.125]])))
    lines = [" ".join(line.replace("│", " ").replace("┃", " ").split()) for line in console.export_text().splitlines()]
    assert "Region Revenue (USD) Return rate" in lines and "NA 17,612,000.50 12.5%" in lines


FINETUNE_SAID = ("Noted: technique dpo.\n\nThe plan:\nModel: tiny-llama (llama3).\n"
                 "Memory: about 553 MiB at its peak, of 19.1 GiB free:\n  - model weights: 4 MiB\n"
                 "  - gradients: 2 MiB\n  Trainable parameters: 551,552.\nSettings (any can be changed by name):\n"
                 "  - method = full: small enough.\n\n"
                 "Starting the job spends compute, so it waits for your approval.")


def test_the_terminal_shows_a_plan_once_as_the_ui_does():
    from rich.console import Console

    from agent.events import ApprovalNeeded, PlanProposed, TextDelta
    from agent.state import Plan, Step
    from cli.chat.terminal import TerminalView

    plan = Plan(summary=FINETUNE_SAID, steps=[
        Step(id="s1", tool="start_finetune", title="Fine-tune tiny-llama with dpo on reply_preferences",
             risk="compute", args={"table": "reply_preferences", "model": "tiny-llama", "technique": "dpo"},
             estimated_cost="Memory: about 553 MiB at its peak, of 19.1 GiB free:; Duration: about 27 min"),
        Step(id="s2", tool="create_derived_table", title="Create table `emea_customers`", risk="write",
             args={"name": "emea_customers", "select_sql": "select * from customers where region = 'EMEA'"})])
    console = Console(record=True, width=120)
    view = TerminalView(console)
    for part in (FINETUNE_SAID[:40], FINETUNE_SAID[40:]):  # streamed in pieces, as a planner says it
        view.render(TextDelta(text=part))
    view.render(PlanProposed(plan=plan, plan_hash="h1", needs_approval=["s1", "s2"]))
    view.render(ApprovalNeeded(thread_id="t", plan=plan, plan_hash="h1", needs_approval=["s1", "s2"]))
    out = console.export_text()
    lines = [line.strip() for line in out.splitlines()]
    assert out.count("Noted: technique dpo.") == 1 and out.count("Starting the job spends compute") == 1
    assert out.count("needs approval") == 2 and out.count("Plan") == 1  # the checklist, once
    # The explanation as a clean list: each labelled line an item, indented lines nested under it.
    assert "• The plan:" in lines and "• Model: tiny-llama (llama3)." in lines
    assert "• model weights: 4 MiB" in lines and "• Trainable parameters: 551,552." in lines
    # No empty fields in the step's cost, its SQL laid out as code, not a call's text.
    assert "free:;" not in out and "of 19.1 GiB free · Duration: about 27 min" in " ".join(out.split())
    assert "SELECT" in lines and "FROM customers" in lines and "WHERE" in lines
    assert "select_sql=" not in out and "create_derived_table(" not in out and "`" not in out

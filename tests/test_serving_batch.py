"""Batch inference on a real DuckDB warehouse with tiny local models and real worker processes: the plan detects the
prompt and key columns and refuses bad input clearly; a batch writes a catalogued predictions table with lineage and
greedy predictions equal to the engine's own; a worker SIGKILLed mid-way is restarted and redoes no finished row; a
cancelled batch resumes; a batch waits while another process holds the warehouse."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import UserError
from tests.spool_holds import hold_spool_after, spool_count
from tests.waiting import JOB_STALL_S as STALL_S, until
from catalog.importers import import_paths
from catalog.safe_sql import run_sql
from catalog.store import CatalogStore
from runtimes.monitoring.traffic import spool_path
from runtimes.jobs import lifecycle
from runtimes.jobs.store import JobStore
from runtimes.serving.batch import transform as batch
from runtimes.serving.batch.spool import BatchSpool
from runtimes.models.registry import decide, register_version
from tests.serving_models import tiny_adapter, tiny_base

ROWS = 40


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from core.workspace import Workspace

    root = tmp_path_factory.mktemp("batch")
    ws = Workspace(root / "ws")
    ws.create()
    tickets = [{"ticket_id": i, "customer_id": i % 4, "subject": f"order {i}", "notes": None,
                "body": "" if i % 10 == 3 else f"Where is order {i}? It was due on day {i % 7}."} for i in range(ROWS)]
    (root / "tickets.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tickets), encoding="utf-8")
    (root / "scores.csv").write_text("id,score\n1,0.5\n2,0.7\n", encoding="utf-8")
    import_paths(ws, [root / "tickets.jsonl", root / "scores.csv"])
    base = tiny_base(ws.root / "models" / "base" / "tiny")
    adapter = tiny_adapter(base, root / "runs" / "j1" / "model", seed=1)
    lineage = {"job_id": "j1", "base_model": "tiny", "technique": "sft", "dataset_sql": "SELECT * FROM tickets"}
    register_version(ws, "ticket-sft", str(adapter), None, lineage)
    decide(ws, "ticket-sft", "1", "approved", "dana")
    register_version(ws, "ticket-sft", str(adapter), None, {**lineage, "job_id": "j2"})  # version 2 stays pending
    return ws


def test_plan_detects_columns_and_refuses_bad_input(ws):
    plan = batch.plan_batch(ws, {"model": "ticket-sft", "table": "tickets"})
    assert (plan.model_id, plan.prompt_column, plan.key_column, plan.format, plan.into) == (
        "ticket-sft@1", "body", "ticket_id", "chat", "tickets_predictions")
    assert plan.rows == ROWS and plan.rows_with_prompt == ROWS - 4 and plan.spec.temperature == 0.0
    assert "4 without a prompt are kept, unanswered" in plan.explain() and "greedy" in plan.explain()
    assert plan.lineage["body"] == ["tickets.body"]
    on_query = batch.plan_batch(ws, {"model": "tiny", "sql": "SELECT subject AS question FROM tickets LIMIT 5"})
    assert (on_query.prompt_column, on_query.key_column, on_query.into) == ("question", None, "tickets_predictions")
    assert on_query.lineage["question"] == ["tickets.subject"]

    bad = [({"model": "ticket-sft", "table": "tickts"}, r"no table `tickts`.*did you mean `tickets`"),
           ({"model": "ticket-sft", "table": "tickets", "prompt_column": "bdy"},
            r"no column `bdy` in the batch's source; did you mean `body`"),
           ({"model": "ticket-sft", "table": "tickets", "prompt_column": "notes"}, r"prompt column `notes` is empty"),
           ({"model": "ticket-sft", "table": "scores"}, r"no text column to prompt with \(columns: id, score\)"),
           ({"model": "ticket-sft", "table": "tickets", "key_column": "customer_id"}, r"`customer_id` cannot key .* repeat"),
           ({"model": "ticket-sft@2", "table": "tickets"}, r"version 2 is pending, not approved"),
           ({"model": "ticket-sf", "table": "tickets"}, r"no model `ticket-sf`; did you mean `ticket-sft`"),
           ({"model": "ticket-sft", "table": "tickets", "into": "scores"}, r"`scores` exists and no batch made it"),
           ({"model": "ticket-sft", "table": "tickets", "into": "my table"}, r"not a usable table name"),
           ({"model": "ticket-sft", "table": "tickets", "sql": "SELECT 1"}, r"exactly one of a catalog table and a SQL"),
           ({"model": "ticket-sft", "sql": "DELETE FROM tickets"}, r"DELETE refused"),
           ({"model": "ticket-sft", "table": "tickets", "temperature": 5}, r"`temperature`: Input should be less")]
    for spec, message in bad:
        with pytest.raises(UserError, match=message):
            batch.plan_batch(ws, spec)
    assert JobStore(ws).list() == []  # planning starts nothing


def test_cli_dry_run_and_bad_input(ws):
    from cli.main import app

    runner = CliRunner()
    ok = runner.invoke(app, ["-w", str(ws.root), "batch", "ticket-sft", "--data", "tickets", "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert "prompt: column `body`" in ok.output and "dry run: nothing was started" in ok.output
    bad = runner.invoke(app, ["-w", str(ws.root), "batch", "ticket-sft", "--data", "tickets", "--prompt-column", "bdy"])
    assert bad.exit_code == 2 and "did you mean `body`" in bad.output
    assert "no job `nope`" in runner.invoke(app, ["-w", str(ws.root), "batch", "status", "nope"]).output


@pytest.mark.slow
def test_batch_writes_a_catalogued_predictions_table_equal_to_the_engine(ws):
    from cli.main import app
    from runtimes.serving.engines.transformers_engine import ChatMessage, Engine, Sampling
    from runtimes.models.refs import resolve_served

    sql = "SELECT ticket_id, body FROM tickets WHERE ticket_id < 12"
    out = CliRunner().invoke(app, ["-w", str(ws.root), "batch", "ticket-sft", "--data", sql, "--into", "tp",
                                   "--max-tokens", "6", "--micro-batch", "5", "--json"])
    assert out.exit_code == 0, out.output
    job = json.loads(out.output.strip().splitlines()[-1])
    assert (job["status"], job["rows_done"], job["output_table"]) == ("succeeded", 12, "tp")

    got = run_sql(ws, "SELECT p.ticket_id, p.prompt, p.prediction, p.finish_reason, p.model, t.body "
                      "FROM tp p JOIN tickets t USING (ticket_id) ORDER BY p.ticket_id")
    assert len(got.rows) == 12 and all(r[1] == r[5] for r in got.rows)  # joins back to its rows, prompts as sent
    assert {r[4] for r in got.rows} == {"ticket-sft@1"}
    assert [r[0] for r in got.rows if r[3] == "skipped"] == [3] and got.rows[3][2] is None

    engine = Engine(str(ws.root / "models" / "base" / "tiny"))
    engine.register(resolve_served(ws, "ticket-sft"))
    for ticket_id, prompt, prediction, *_ in got.rows[:3]:
        ids = engine.prompt_ids("ticket-sft@1", messages=[ChatMessage(role="user", content=prompt)])
        assert engine.generate("ticket-sft@1", ids, Sampling(max_new_tokens=6, temperature=0)).text == prediction

    catalog = CatalogStore(ws).load()
    table = catalog.table("tp")
    assert table.source == f"batch:{job['id']}" and table.row_count == 12 and table.primary_key == ["ticket_id"]
    assert "ticket-sft@1" in table.description and "(version 1)" in table.description
    assert {x.column: x.sources for x in catalog.lineage if x.table == "tp"} == {
        "ticket_id": ["tickets.ticket_id"], "prompt": ["tickets.body"], "prediction": ["tickets.body"]}
    assert "ticket-sft@1 version 1" in next(x.sql for x in catalog.lineage if x.table == "tp")
    kinds = [e.kind for e in JobStore(ws).events(job["id"])]
    assert "progress" in kinds and kinds[-1] == "status"

    with sqlite3.connect(spool_path(ws)) as db:
        captured = db.execute("SELECT count(*), count(DISTINCT request_id), min(route), max(route) FROM traffic "
                              "WHERE endpoint = 'batch' AND request_id LIKE ?", (job["id"] + ":%",)).fetchone()
    assert captured == (11, 11, "batch", "batch")  # the row with no prompt was no request

    with pytest.raises(UserError, match=r"table `tp` exists \(made by batch-.*\); pass --replace"):
        batch.plan_batch(ws, {"model": "ticket-sft", "sql": sql, "into": "tp"})
    assert batch.plan_batch(ws, {"model": "ticket-sft", "sql": sql, "into": "tp", "replace": True}).into == "tp"


@pytest.mark.slow
def test_a_worker_killed_mid_way_is_restarted_and_redoes_no_finished_row(ws):
    plan = batch.plan_batch(ws, {"model": "tiny", "table": "tickets", "into": "killed", "max_new_tokens": 4,
                                 "micro_batch": 4})
    job = batch.run_batch(ws, plan)
    lock = hold_spool_after(ws, job.id, 4)
    try:
        before = spool_count(ws, job.id)
        first_pid = JobStore(ws).get(job.id).pid
        os.kill(first_pid, signal.SIGKILL)
        until(lambda: not _alive(first_pid), ws)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert 4 <= before < ROWS and JobStore(ws).get(job.id).status == "running"  # killed, not finished
    first_rows = {p.row_key: p for p in BatchSpool(lifecycle.job_dir(ws, job.id) / "predictions.sqlite").all()}

    assert lifecycle.recover(ws) == [job.id]  # its process died: restarted, keeping the rows it finished
    done = lifecycle.wait(ws, job.id, timeout_s=STALL_S)
    assert done.status == "succeeded", done.error
    spool = BatchSpool(lifecycle.job_dir(ws, job.id) / "predictions.sqlite")
    assert spool.count_by_attempt() == {1: before, 2: ROWS - before}
    again = {p.row_key: p for p in spool.all()}
    assert all(again[k] == p for k, p in first_rows.items())  # the first attempt's rows, untouched
    second = [e.data for e in JobStore(ws).events(job.id) if e.kind == "generated"][-1]
    skipped_left = sum(1 for k in range(ROWS) if k % 10 == 3 and str(k) not in first_rows)
    assert second == {"attempt": 2, "generated": ROWS - before - skipped_left, "skipped": before}
    counted = run_sql(ws, "SELECT count(*), count(DISTINCT ticket_id) FROM killed").rows[0]
    assert counted == [ROWS, ROWS]
    with sqlite3.connect(spool_path(ws)) as db:  # captured as traffic once each, those the kill left uncaptured too
        captured = db.execute("SELECT count(*), count(DISTINCT request_id) FROM traffic WHERE request_id LIKE ?",
                              (job.id + ":%",)).fetchone()
    assert captured == (ROWS - 4, ROWS - 4)


@pytest.mark.slow
def test_cancel_stops_after_the_micro_batch_and_resume_continues(ws):
    plan = batch.plan_batch(ws, {"model": "tiny", "table": "tickets", "into": "cancelled", "max_new_tokens": 4,
                                 "micro_batch": 4})
    job = batch.run_batch(ws, plan)
    lock = hold_spool_after(ws, job.id, 4)
    try:
        running = lifecycle.cancel(ws, job.id)
        assert running.stop_requested and running.status == "running"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    stopped = lifecycle.wait(ws, job.id, timeout_s=STALL_S)
    assert stopped.status == "cancelled" and 4 <= stopped.rows_done < ROWS
    assert lifecycle.resume(ws, job.id).status in ("queued", "validating")
    with pytest.raises(UserError, match="is (queued|validating|running); only a cancelled or failed job can be resumed"):
        lifecycle.resume(ws, job.id)
    done = lifecycle.wait(ws, job.id, timeout_s=STALL_S)
    assert done.status == "succeeded" and done.rows_done == ROWS
    assert BatchSpool(lifecycle.job_dir(ws, job.id) / "predictions.sqlite").count_by_attempt() == {
        1: stopped.rows_done, 2: ROWS - stopped.rows_done}


@pytest.mark.slow
def test_the_batch_waits_while_another_process_holds_the_warehouse(ws):
    from catalog.warehouse import connect_writer

    plan = batch.plan_batch(ws, {"model": "tiny", "sql": "SELECT ticket_id, body FROM tickets LIMIT 6",
                                 "into": "waited", "max_new_tokens": 2})
    with connect_writer(ws):  # this test process holds the file: the worker may not even read
        job = batch.run_batch(ws, plan)
        until(lambda: any(e.kind == "waiting" for e in JobStore(ws).events(job.id)), ws)
        assert JobStore(ws).get(job.id).status not in ("failed", "succeeded")
    done = lifecycle.wait(ws, job.id, timeout_s=STALL_S)
    assert done.status == "succeeded" and run_sql(ws, "SELECT count(*) FROM waited").rows == [[6]]


def test_tools_plan_without_side_effects_and_report_status(ws):
    from tools.registry import ToolRegistry
    from tools.risk import Risk

    registry = ToolRegistry.discover()
    assert registry.risk("run_batch") == Risk.compute and registry.risk("batch_status") == Risk.read
    tool = registry.bind(ws)["run_batch"]
    estimate = tool.estimate(tool.schema().model_validate({"model": "ticket-sft", "table": "tickets"}))
    assert "model: `ticket-sft@1`" in estimate and "column `body`" in estimate
    assert "cannot estimate: no table `tickts`" in tool.estimate(
        tool.schema().model_validate({"model": "ticket-sft", "table": "tickts"}))
    with pytest.raises(ValueError, match="exactly one of `table` and `sql`"):
        tool.schema().model_validate({"model": "ticket-sft"})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_row_beyond_the_context_length_errors_and_the_others_are_answered(ws):
    from cli.main import app

    sql = ("SELECT ticket_id, CASE WHEN ticket_id = 1 THEN repeat(body || ' ', 300) ELSE body END AS body "
           "FROM tickets WHERE ticket_id IN (0, 1, 2, 3)")
    out = CliRunner().invoke(app, ["-w", str(ws.root), "batch", "ticket-sft", "--data", sql, "--into", "tp_long",
                                   "--max-tokens", "4", "--json"])
    assert out.exit_code == 0, out.output
    job = json.loads(out.output.strip().splitlines()[-1])
    assert (job["status"], job["rows_done"]) == ("succeeded", 4)
    got = run_sql(ws, "SELECT ticket_id, prediction, finish_reason, prompt_tokens FROM tp_long ORDER BY ticket_id")
    by_id = {r[0]: r[1:] for r in got.rows}
    assert by_id[1][0] is None and by_id[1][1] == "error" and by_id[1][2] > 2048
    assert by_id[0][1] in ("stop", "length") and by_id[2][1] in ("stop", "length") and by_id[0][0]
    assert by_id[3][1] == "skipped"
    said = [e.message for e in JobStore(ws).events(job["id"]) if e.kind == "row_error"]
    assert len(said) == 1 and "row `" in said[0] and "maximum context length is 2048 tokens" in said[0], said

"""The one job system with real worker processes on a real state database, a tiny local model and a real DuckDB
warehouse: fine-tuning and batch jobs share one table; the plan stored at submit is the plan that runs (a fine-tune
runs the approved settings where a new plan would differ; a batch whose rows changed since approval refuses to run);
both kinds are recovered after SIGKILL, cancelled with SIGTERM and resumed through the same calls; the chat follows
a batch it started as a batch.

Waits follow the jobs' progress: a job that still advances is waited for, and a wait gives up only once nothing at
all has changed for a long while."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from catalog.importers import import_paths
from core.errors import UserError
from core.workspace import Workspace
from runtimes.jobs import lifecycle
from runtimes.jobs.store import FINAL, Job, JobStore
from tests.spool_holds import hold_spool_after, spool_count
from tests.waiting import JOB_STALL_S as STALL_S, until

TICKETS = 24


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    from runtimes.models.registry import decide, register_version
    from runtimes.training.tiny_models import build_tiny_model
    from tests.serving_models import tiny_adapter

    root = tmp_path_factory.mktemp("lifecycle")
    ws = Workspace(root / "ws")
    ws.create()
    demos = [{"prompt": f"Where is order {i}?", "completion": f"Order {i} ships on day {i % 7}."} for i in range(40)]
    tickets = [{"ticket_id": i, "body": f"Where is order {i}? It was due on day {i % 7}."} for i in range(TICKETS)]
    (root / "demos.jsonl").write_text("".join(json.dumps(r) + "\n" for r in demos), encoding="utf-8")
    (root / "tickets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tickets), encoding="utf-8")
    import_paths(ws, [root / "demos.jsonl", root / "tickets.jsonl"])
    base = build_tiny_model("qwen3", ws.root / "models" / "base" / "tiny",
                            [r["prompt"] + " " + r["completion"] for r in demos],
                            hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=320)
    adapter = tiny_adapter(base, root / "adapter")
    register_version(ws, "ticket-sft", str(adapter), None, {"job_id": "j0", "base_model": "tiny", "technique": "sft",
                                                            "dataset_sql": "SELECT * FROM tickets"})
    decide(ws, "ticket-sft", "1", "approved", "dana")
    return ws


def _finetune(**settings) -> dict:
    return {"model": "tiny", "table": "demos", "technique": "sft", "eval_fraction": 0.1,
            "settings": {"micro_batch": 2, "max_length": 32, **settings}}


class _Freezer:
    """Stops job workers where the test needs them (SIGSTOP), so that one job cannot run ahead, on a loaded
    machine, while the test works on the other; SIGKILL still ends a stopped worker and a SIGTERM sent meanwhile
    takes effect at SIGCONT. Whatever happens, it leaves no worker stopped behind it."""

    def __init__(self, ws: Workspace) -> None:
        self.ws, self.store, self.frozen = ws, JobStore(ws), {}

    def __enter__(self) -> "_Freezer":
        return self

    def __exit__(self, *exc) -> None:
        from runtimes.jobs.process import is_worker_alive

        for pid, job_id in self.frozen.items():
            if is_worker_alive(pid, job_id):
                os.kill(pid, signal.SIGKILL)

    def when(self, job_id: str, reached) -> Job:
        """Once the job's worker is up and `reached(job)`, stop it there; returns the job as it was frozen."""
        def frozen() -> Job | None:
            job = self.store.get(job_id)
            if not (job.status in ("validating", "running") and job.pid and reached(job)):
                return None
            os.kill(job.pid, signal.SIGSTOP)
            if _unlocked(self.ws.state_path) and _unlocked(self.ws.mlflow_db):
                self.frozen[job.pid] = job_id
                return job
            os.kill(job.pid, signal.SIGCONT)  # stopped inside a write: the others would wait on it; try again
            return None

        return until(frozen, self.ws)

    def thaw(self, job: Job) -> None:
        self.frozen.pop(job.pid, None)
        os.kill(job.pid, signal.SIGCONT)


def _unlocked(db_path: Path) -> bool:
    """Whether nobody holds the write lock of this SQLite database now."""
    if not Path(db_path).exists():
        return True
    db = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def _dead(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] == "Z"


@pytest.mark.slow
def test_one_table_holds_every_kind_and_the_stored_plan_is_the_plan_that_runs(ws):
    from dataclasses import replace

    from runtimes.training.jobs.finetune_kind import plan as plan_finetune

    approved = plan_finetune(ws, _finetune(max_steps=2))
    assert approved.plan["settings"]["max_steps"] == 2
    # An approved plan that differs from what planning the spec again gives: the job must run this one.
    edited = replace(approved, plan={**approved.plan, "settings": {**approved.plan["settings"], "max_steps": 3,
                                                                   "learning_rate": 0.0123}})
    tune = lifecycle.submit(ws, "finetune", planned=edited)
    batch = lifecycle.submit(ws, "batch", {"model": "tiny", "sql": "SELECT ticket_id, body FROM tickets LIMIT 4",
                                           "into": "few", "max_new_tokens": 2})
    with sqlite3.connect(ws.state_path) as db:
        kinds = dict(db.execute("SELECT id, kind FROM jobs WHERE id IN (?, ?)", (tune.id, batch.id)).fetchall())
    assert kinds == {tune.id: "finetune", batch.id: "batch"}
    assert {j.id: j.kind for j in JobStore(ws).list()} == kinds
    assert JobStore(ws).get(batch.id).plan["rows"] == 4 and JobStore(ws).get(batch.id).progress.unit == "rows"

    done = lifecycle.wait(ws, tune.id, timeout_s=STALL_S)
    assert done.status == "succeeded", done.error
    assert done.step == 3 and done.config["max_steps"] == 3  # the spec said 2: the stored plan ran
    assert done.lineage["config"]["learning_rate"] == 0.0123
    assert [s for _, s, _, _ in JobStore(ws).metrics(tune.id, "loss")][-1] == 3
    assert any(e.kind == "plan" and "learning_rate=0.0123" in e.message for e in JobStore(ws).events(tune.id))
    finished = lifecycle.wait(ws, batch.id, timeout_s=STALL_S)
    assert finished.status == "succeeded" and finished.output_table == "few" and finished.rows_done == 4


@pytest.mark.slow
def test_a_batch_whose_rows_changed_since_approval_does_not_run(ws):
    from catalog.warehouse import connect_writer
    from runtimes.serving.batch.transform import plan_batch, run_batch

    plan = plan_batch(ws, {"model": "tiny", "sql": "SELECT ticket_id, body FROM tickets WHERE ticket_id < 3",
                           "into": "changed", "max_new_tokens": 2})
    with connect_writer(ws) as con:
        con.execute("UPDATE tickets SET body = 'edited' WHERE ticket_id = 1")
    try:
        job = lifecycle.wait(ws, run_batch(ws, plan).id, timeout_s=STALL_S)
    finally:
        with connect_writer(ws) as con:
            con.execute("UPDATE tickets SET body = 'Where is order 1? It was due on day 1.' WHERE ticket_id = 1")
    assert job.status == "failed" and "changed since its plan was approved" in job.error


@pytest.mark.slow
def test_both_kinds_recover_after_sigkill_cancel_and_resume_through_the_same_calls(ws):
    store = JobStore(ws)
    with _Freezer(ws) as freezer:
        tune = lifecycle.submit(ws, "finetune", _finetune(max_steps=30, checkpoint_every=4, learning_rate=1e-3))
        freezer.when(tune.id, lambda t: t.checkpoint and t.step >= 6)  # while the batch gets going
        batch = lifecycle.submit(ws, "batch", {"model": "tiny", "table": "tickets", "into": "recovered",
                                               "max_new_tokens": 3, "micro_batch": 2})
        ids = [tune.id, batch.id]

        # SIGKILL both workers once each has saved something: a checkpoint, committed rows.
        hold = hold_spool_after(ws, batch.id, 4)
        try:
            killed = {j: store.get(j).pid for j in ids}
            for pid in killed.values():
                os.kill(pid, signal.SIGKILL)
            until(lambda: all(_dead(p) for p in killed.values()), ws)
        finally:
            hold.execute("ROLLBACK")
            hold.close()
        assert {store.get(j).status for j in ids} == {"running"}  # nobody has noticed yet
        assert sorted(lifecycle.recover(ws)) == sorted(ids)
        died = {j: [e.message for e in store.events(j) if "its process died" in e.message] for j in ids}
        assert "resuming from checkpoint-" in died[tune.id][0] and "rows done" in died[batch.id][0]

        # SIGTERM each once its second attempt has done more: it saves its work and ends cancelled. The fine-tune
        # waits, stopped as soon as its second worker is up, while the batch is cancelled mid-way.
        starting = freezer.when(tune.id, lambda t: t.attempt == 2)
        before = spool_count(ws, batch.id)
        hold = hold_spool_after(ws, batch.id, before + 1)
        try:
            assert lifecycle.cancel(ws, batch.id).stop_requested
        finally:
            hold.execute("ROLLBACK")
            hold.close()
        freezer.thaw(starting)
        resumed = freezer.when(tune.id, lambda t: t.status == "running"
                               and t.step > int(t.checkpoint.rsplit("-", 1)[1]))
        assert lifecycle.cancel(ws, tune.id).stop_requested  # its SIGTERM stays pending until it runs on
        freezer.thaw(resumed)
        stopped = {j: lifecycle.wait(ws, j, timeout_s=STALL_S) for j in ids}
    assert {j.status for j in stopped.values()} == {"cancelled"}, [j.error for j in stopped.values()]
    assert stopped[tune.id].checkpoint and before < stopped[batch.id].rows_done < TICKETS

    for job_id in ids:
        with pytest.raises(UserError, match="already cancelled; nothing to cancel"):
            lifecycle.cancel(ws, job_id)
        assert lifecycle.resume(ws, job_id).status in ("queued", "validating")
    done = {j: lifecycle.wait(ws, j, timeout_s=STALL_S) for j in ids}
    assert done[tune.id].status == "succeeded" and done[tune.id].step == 30, done[tune.id].error
    assert done[batch.id].status == "succeeded" and done[batch.id].rows_done == TICKETS, done[batch.id].error
    assert {j.attempt for j in done.values()} == {3}
    from runtimes.serving.batch.batch_kind import spool_of

    by_attempt = spool_of(ws, batch.id).count_by_attempt()
    assert sum(by_attempt.values()) == TICKETS and set(by_attempt) <= {1, 2, 3}  # no row was answered twice
    losses = [s for a, s, _, _ in store.metrics(tune.id, "loss") if a == 3]
    assert min(losses) > 1 and max(losses) == 30  # the last attempt continued from a checkpoint

    for job_id in ids:
        with pytest.raises(UserError, match="is succeeded; only a cancelled or failed job can be resumed"):
            lifecycle.resume(ws, job_id)
    with pytest.raises(UserError, match="registered .* it is kept"):
        lifecycle.delete(ws, tune.id)
    lifecycle.delete(ws, batch.id)
    assert batch.id not in {j.id for j in store.list()} and not lifecycle.job_dir(ws, batch.id).exists()


@pytest.mark.slow
def test_the_chat_follows_a_batch_it_started_as_a_batch(ws):
    from agent.session import Session
    from tests.agent_events import collect, done, of

    with Session(ws, "batch-chat") as s:
        asked = collect(s.send("run the ticket-sft model over tickets as a batch"))
        assert done(asked).status == "waiting_approval", [e.to_json() for e in asked][-3:]
        (finished,) = of(collect(s.approve()), "step_finished")
        assert finished.ok and finished.tool == "run_batch" and finished.job_kind == "batch"
        job_id = finished.job_id
        assert s.started_jobs() == [job_id]
        seen: list = []
        while not (seen and seen[-1].final):
            window = list(s.follow_job(job_id, interval=0.2, timeout=STALL_S))
            fresh = [p for p in window if not p.timed_out and (not seen or (p.status, p.step) != (seen[-1].status,
                                                                                                   seen[-1].step))]
            assert fresh or not window[-1].timed_out, f"batch {job_id} showed no change for {STALL_S:.0f} s"
            seen += fresh
    last = seen[-1]
    assert all(p.kind == "batch" and p.unit == "rows" for p in seen)
    assert last.status == "succeeded" and last.step == last.max_steps == TICKETS
    assert last.output_table == "tickets_predictions" and "predictions in table `tickets_predictions`" in last.text
    assert f"batch {job_id} succeeded: {TICKETS} of {TICKETS} rows" in last.text
    assert last.model_version is None and not last.evaluation  # nothing of a fine-tune's report
    assert JobStore(ws).get(job_id).kind == "batch" and JobStore(ws).get(job_id).status in FINAL


def test_a_state_database_with_the_former_job_tables_still_opens(tmp_path):
    """A workspace whose state.sqlite holds the tables of the former per-kind stores: they are left as they are and
    the one jobs table is created beside them."""
    ws = Workspace(tmp_path / "ws")
    ws.create()
    with sqlite3.connect(ws.state_path) as db:
        db.executescript("""
            CREATE TABLE training_jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, spec TEXT NOT NULL,
                created_at REAL NOT NULL, started_at REAL, finished_at REAL, pid INTEGER, step INTEGER);
            CREATE TABLE batch_jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, plan TEXT NOT NULL,
                created_at REAL NOT NULL, rows_done INTEGER);
            INSERT INTO training_jobs VALUES ('job-old', 'running', '{}', 0, 0, NULL, 99999, 3);
            INSERT INTO batch_jobs VALUES ('batch-old', 'queued', '{}', 0, 0);""")
    assert JobStore(ws).list() == [] and lifecycle.recover(ws) == []
    with pytest.raises(UserError, match="no job `job-old`"):
        JobStore(ws).get("job-old")
    with sqlite3.connect(ws.state_path) as db:
        assert db.execute("SELECT count(*) FROM training_jobs").fetchone() == (1,)

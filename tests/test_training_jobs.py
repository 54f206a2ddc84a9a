"""Training jobs as real processes on a real state database and MLflow store, with a tiny local model: a bad
request fails before compute; cancel while queued; SIGTERM checkpoints, resume continues, SIGKILL mid-run is
recovered from the last checkpoint with the same losses, and the job registers a version with its lineage."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from core.errors import UserError
from tests.waiting import JOB_STALL_S as STALL_S, until
from runtimes.jobs import lifecycle as launcher
from runtimes.jobs.lifecycle import recover
from runtimes.jobs.store import JobStore
from runtimes.models.registry import get_version

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(demos_workspace):
    return demos_workspace(rows=40)


def _spec(**settings):
    return {"model": "tiny", "table": "demos", "technique": "sft", "eval_fraction": 0.1,
            "settings": {"micro_batch": 2, "max_length": 32, **settings}}


def test_bad_requests_fail_clearly_before_any_compute(ws):
    with pytest.raises(UserError, match=r"no setting `learnin_rate`; did you mean `learning_rate`"):
        launcher.submit(ws, "finetune", _spec(learnin_rate=1e-3))
    with pytest.raises(UserError, match="setting `max_steps` takes an integer, got 'many'"):
        launcher.submit(ws, "finetune", _spec(max_steps="many"))
    with pytest.raises(UserError, match="exactly one of a catalog table and a SQL query"):
        launcher.submit(ws, "finetune", {"model": "tiny", "technique": "sft"})
    # The data is read and checked before a job exists: a missing table, a statement that is not a read.
    with pytest.raises(UserError, match=r"no table `demoz`.*`demos`"):
        launcher.submit(ws, "finetune", {**_spec(max_steps=2), "table": "demoz"})
    for sql, why in (("DELETE FROM demos", "DELETE refused"), ("SELECT 1 AS prompt; SELECT 2", "2 statements"),
                     ("SELECT * FROM read_csv('/etc/passwd')", "reads or lists files")):
        with pytest.raises(UserError, match=why):
            launcher.submit(ws, "finetune", {**_spec(max_steps=2), "table": None, "sql": sql})
    store = JobStore(ws)
    assert store.list() == []  # refused requests leave no job behind


def test_cancel_sigterm_resume_sigkill_recovery_then_success_with_a_registered_version(ws):
    """One job through every interruption (each worker start costs seconds, so one job carries them all)."""
    store = JobStore(ws)
    job = launcher.submit(ws, "finetune", _spec(max_steps=36, checkpoint_every=6, learning_rate=1e-3))
    other = launcher.submit(ws, "finetune", _spec(max_steps=2))
    assert store.get(other.id).status == "queued"  # one job at a time on CPU
    assert launcher.cancel(ws, other.id).status == "cancelled"
    with pytest.raises(UserError, match="is already cancelled; nothing to cancel"):
        launcher.cancel(ws, other.id)

    # SIGTERM (cancel while running): a checkpoint at the end of the current step, then `cancelled`.
    until(lambda: store.get(job.id).step >= 2, ws)
    launcher.cancel(ws, job.id)
    stopped = launcher.wait(ws, job.id, timeout_s=STALL_S)
    assert stopped.status == "cancelled" and stopped.checkpoint is not None
    first_ckpt = int(Path(stopped.checkpoint).name.split("-")[1])
    assert 2 <= first_ckpt < 36 and Path(stopped.checkpoint, "trainer_state.json").is_file()
    assert "stopped at step" in store.events(job.id)[-1].message

    # Resume, then SIGKILL a few steps after the next regular checkpoint; recovery continues from it.
    launcher.resume(ws, job.id)
    until(lambda: (j := store.get(job.id)).status == "running" and j.checkpoint != stopped.checkpoint
           and j.step >= int(j.checkpoint.rsplit("-", 1)[1]) + 2, ws)
    running = store.get(job.id)
    second_ckpt = int(running.checkpoint.rsplit("-", 1)[1])
    assert second_ckpt % 6 == 0
    os.kill(running.pid, signal.SIGKILL)
    until(lambda: not launcher.is_worker_alive(running.pid, job.id), ws)
    assert store.get(job.id).status == "running"  # nobody has noticed yet
    assert recover(ws) == [job.id]
    assert any(f"its process died at step" in e.message and f"checkpoint-{second_ckpt}" in e.message
               for e in store.events(job.id))

    done = launcher.wait(ws, job.id, timeout_s=STALL_S)  # a slow job that advances is waited for
    assert done.status == "succeeded", done.error
    with pytest.raises(UserError, match="is succeeded; only a cancelled or failed job can be resumed"):
        launcher.resume(ws, job.id)
    losses = store.metrics(job.id, "loss")
    by_attempt = [{s: v for a, s, _, v in losses if a == n} for n in (1, 2, 3)]
    assert min(by_attempt[1]) == first_ckpt + 1 and min(by_attempt[2]) == second_ckpt + 1  # continued, not restarted
    assert max(by_attempt[2]) == 36
    overlap = sorted(set(by_attempt[1]) & set(by_attempt[2]))
    assert len(overlap) >= 2  # steps trained both before the kill and after recovery give the same loss
    assert all(abs(by_attempt[1][s] - by_attempt[2][s]) < 1e-5 for s in overlap)

    name, version = done.model_version.split("/")
    mv = get_version(ws, name, version)
    assert name == "tiny-sft" and mv.approval == "pending" and mv.run_id == done.mlflow_run_id
    assert mv.lineage["job_id"] == job.id and mv.lineage["base_model"] == "tiny" and mv.lineage["recipe"] == "sft"
    assert mv.lineage["dataset_hash"] == done.lineage["dataset_hash"] and len(mv.lineage["dataset_hash"]) == 64
    assert "demos" in mv.lineage["dataset_sql"]
    assert mv.lineage["config"]["learning_rate"] == 1e-3 and mv.lineage["metrics"]["steps"] == 36
    # The plan trains a model this small in full: the version is the whole model, not an adapter.
    assert mv.lineage["metrics"]["eval_loss"] == mv.lineage["metrics"]["tuned_heldout_loss"] > 0
    assert Path(mv.source, "model.safetensors").is_file()
    assert mv.lineage["config"]["method"] == "full"
    report = json.loads((ws.root / "runs" / job.id / "report" / "report.json").read_text())
    assert [s for s, _ in report["curves"]["loss"]] == list(range(1, 37))
    from runtimes.models.tracking import client

    run = client(ws).get_run(done.mlflow_run_id)  # one MLflow run across all three attempts
    assert run.info.status == "FINISHED" and run.data.params["dataset_hash"] == done.lineage["dataset_hash"]
    assert [m.step for m in client(ws).get_metric_history(done.mlflow_run_id, "loss")][-1] == 36

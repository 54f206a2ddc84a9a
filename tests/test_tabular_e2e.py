"""Classic ML end to end on the demo company, through the command line a user types: `lathe train "predict which
customers will churn…"` proposes a churn label with features from orders and support tickets and trains LightGBM
tuned for a few trials (a real job process) into a report with SHAP and bias figures; the version is approved,
deployed (a real endpoint process), scored in batch over its customers (a real `score` job, cancelled and resumed,
then killed and restarted, scoring every row once), and a monitor raises a drift alert once the endpoint is sent
shifted inputs."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from catalog.store import CatalogStore
from cli.main import app
from core.workspace import Workspace
from runtimes.jobs import lifecycle
from runtimes.jobs.store import JobStore

pytestmark = pytest.mark.slow
NAME = "churned-lightgbm"


def lathe(ws: Workspace, *args: str):
    r = CliRunner().invoke(app, ["--workspace", str(ws.root), *args])
    assert r.exit_code == 0, r.output
    return r.output


def _mid_way(ws: Workspace, job_id: str) -> int:
    """The pid of the job's worker once it has scored some rows, with many chunks still to go."""
    store = JobStore(ws)
    deadline = time.monotonic() + 300  # a guard against a hang only
    while time.monotonic() < deadline:
        job = store.get(job_id)
        if job.status == "running" and job.rows_done > 0 and job.pid:
            assert job.rows_done < job.rows_total / 4, job.rows_done
            return job.pid
        assert job.status in ("queued", "validating", "running"), (job.status, job.error)
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} never got going")


def _gone(pid: int) -> None:
    import psutil

    try:
        psutil.Process(pid).wait(timeout=60)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:  # our child: a zombie until reaped
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_predict_churn_then_approve_deploy_score_and_watch(module_demo: Workspace):
    from catalog.warehouse import connect_reader
    from runtimes.models.registry import list_versions
    from runtimes.monitoring.monitor_store import MonitorStore
    from runtimes.serving.endpoints import deploy as endpoints

    ws = module_demo
    out = lathe(ws, "train", "predict which customers will churn next month from their orders and tickets",
                "--trials", "2", "--sensitive", "segment", "--yes", "--wait")
    assert "label: `churned`" in out and "no order in the 30 days after" in out
    assert "succeeded" in out and "pending approval" in out
    [job] = JobStore(ws).list(kind="train")
    assert job.status == "succeeded" and job.model_version == f"{NAME}/1", job.error
    features = job.plan["features"]
    assert {"orders_90d", "days_since_orders", "support_tickets_90d"} <= set(features)  # from two tables
    report = json.loads(Path(job.record["report"]).read_text())
    assert report["tuning"]["trials"] == 2 and report["metric"] == "roc_auc"
    low, high = report["ci95"]
    assert report["beats_baseline"] and low > report["baseline"] and report["value"] > 0.7, report["value"]
    folder = Path(job.record["report"]).parent
    for plot in ("shap_importance.png", "shap_beeswarm.png", "fairness_segment.png", "roc.png"):
        assert plot in report["plots"] and (folder / plot).read_bytes()[:4] == b"\x89PNG"
    assert report["fairness"]["segment"]["after"]["verdict"]

    lathe(ws, "models", "approve", NAME, "1")
    assert [v.approval for v in list_versions(ws, NAME)] == ["approved"]
    lathe(ws, "deploy", NAME)
    try:
        # Every customer and cutoff of the label query, scored in batch by a `score` job into a new table: cancelled
        # mid-way and resumed, then killed mid-way and restarted, it scores every row exactly once.
        label_sql = job.plan["dataset_sql"]
        lathe(ws, "batch", NAME, "--data", label_sql, "--into", "churn_scores", "--chunk-rows", "20", "--detach")
        [score] = JobStore(ws).list(kind="score")
        _mid_way(ws, score.id)
        lathe(ws, "batch", "cancel", score.id)  # SIGTERM: it stops after the chunk in hand
        cancelled = lifecycle.wait(ws, score.id, timeout_s=300)
        assert cancelled.status == "cancelled" and 0 < cancelled.rows_done < cancelled.rows_total, cancelled.error
        assert CatalogStore(ws).load().table("churn_scores") is None  # nothing published half-way
        lathe(ws, "batch", "resume", score.id, "--detach")
        pid = _mid_way(ws, score.id)
        os.kill(pid, signal.SIGKILL)
        _gone(pid)
        lathe(ws, "batch", "status", score.id)  # every batch command first restarts what died
        score = lifecycle.wait(ws, score.id, timeout_s=300)
        assert score.status == "succeeded" and score.attempt == 3 and score.lineage["model"] == f"{NAME}@1"
        began = [e.data for e in JobStore(ws).events(score.id) if e.data and "skipped" in e.data]
        assert [d["attempt"] for d in began] == [1, 2, 3] and began[0]["skipped"] == 0
        assert 0 < began[1]["skipped"] <= began[2]["skipped"] < score.rows_total
        with connect_reader(ws) as con:
            cur = con.execute(label_sql)
            rows = [dict(zip([d[0] for d in cur.description], r)) for r in cur.fetchall()]
            got = con.execute("SELECT * EXCLUDE (prediction, score, model, scored_at) FROM churn_scores").fetchall()
            scores = con.execute("SELECT min(score), max(score) FROM churn_scores").fetchone()
        assert sorted(got) == sorted(tuple(r.values()) for r in rows)  # every row once: none lost, none twice
        assert 0 <= scores[0] < scores[1] <= 1
        entry = CatalogStore(ws).load().table("churn_scores")
        assert entry.row_count == len(rows) and entry.source == f"batch:{score.id}"

        # The endpoint is sent customers unlike those it learnt from: far more orders and tickets.
        key = endpoints.local_key(ws, NAME)
        url = [e for e in endpoints.list_endpoints(ws) if e.name == NAME][0].base_url
        shifted = [{**{c: r[c] for c in features}, "orders_90d": 30 + i % 7, "support_tickets_90d": 5 + i % 3,
                    "days_since_orders": 0} for i, r in enumerate(rows[:60])]
        for at in range(0, len(shifted), 20):
            r = httpx.post(f"{url}/invocations", json={"dataframe_records": shifted[at:at + 20]},
                           headers={"Authorization": f"Bearer {key}"}, timeout=60)
            assert r.status_code == 200, r.text
        lathe(ws, "monitors", "create", "churn-watch", "--endpoint", NAME, "--rule", "drift:orders_90d",
              "--rule", "dataset_drift", "--sensitive", "segment")
        lathe(ws, "monitors", "run", "churn-watch")
        alerts = {a.rule for a in MonitorStore(ws).alerts(endpoint=NAME)}
        assert "drift of orders_90d" in alerts, alerts
    finally:
        endpoints.delete(ws, NAME)

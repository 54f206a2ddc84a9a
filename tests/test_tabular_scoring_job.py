"""Batch scoring with a table model as a job of kind `score`, on real worker processes: a job cancelled mid-way and
resumed, then killed (SIGKILL) mid-way and recovered, ends with every source row scored exactly once, as the model
scores it, in a new table with its catalog entry and lineage; a row that does not fit is refused, naming it, before
any job exists."""
from __future__ import annotations

import os
import signal
import time

import pytest

from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from core.errors import UserError
from runtimes.jobs import lifecycle
from runtimes.jobs.store import JobStore
from runtimes.tabular.score_kind import planned
from runtimes.tabular.table_scoring import plan_score
from tests.tabular_models import NAME, churn_workspace

pytestmark = pytest.mark.slow
SOURCE = "SELECT customer_id, label_at, segment FROM churn_labels"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return churn_workspace(tmp_path_factory)[0]


def _mid_way(ws, job_id: str) -> int:
    """Freeze the job's worker once it has scored some rows but not all; returns its pid."""
    store = JobStore(ws)
    deadline = time.monotonic() + 300  # a guard against a hang only
    while time.monotonic() < deadline:
        job = store.get(job_id)
        if job.status == "running" and job.rows_done > 0 and job.pid:
            os.kill(job.pid, signal.SIGSTOP)
            assert store.get(job_id).status == "running" and job.rows_done < job.rows_total
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


def test_a_cancelled_then_killed_job_scores_every_row_once(ws):
    from runtimes.features.online_features import get_online_features
    from runtimes.tabular.scoring import load_version

    plan = plan_score(ws, {"model": NAME, "sql": SOURCE, "into": "churn_scores", "chunk_rows": 2})
    assert plan.rows == 240 and plan.model_id == f"{NAME}@1"
    job = lifecycle.submit(ws, "score", planned=planned(plan))
    pid = _mid_way(ws, job.id)
    lifecycle.cancel(ws, job.id)  # SIGTERM, taken when the worker runs again
    os.kill(pid, signal.SIGCONT)
    cancelled = lifecycle.wait(ws, job.id, timeout_s=300)
    assert cancelled.status == "cancelled" and 0 < cancelled.rows_done < 240, cancelled.error
    assert CatalogStore(ws).load().table("churn_scores") is None  # nothing published half-way
    lifecycle.resume(ws, job.id)
    pid = _mid_way(ws, job.id)
    os.kill(pid, signal.SIGKILL)
    _gone(pid)
    assert lifecycle.recover(ws) == [job.id]
    done = lifecycle.wait(ws, job.id, timeout_s=300)
    assert done.status == "succeeded", done.error
    assert done.attempt == 3 and done.output_table == "churn_scores"
    started = [e.data for e in JobStore(ws).events(job.id) if e.data and "skipped" in e.data]
    assert [d["attempt"] for d in started] == [1, 2, 3]
    assert started[0]["skipped"] == 0 and 0 < started[1]["skipped"] <= started[2]["skipped"] < 240
    with connect_reader(ws) as con:
        got = con.execute("SELECT customer_id, label_at, segment, prediction, score, model FROM churn_scores").fetchall()
        source = con.execute(SOURCE).fetchall()
    assert sorted(r[:3] for r in got) == sorted(source)  # every row once: none lost, none twice
    model = load_version(ws, NAME)
    keys = sorted({r[0] for r in got})
    online = dict(zip(keys, get_online_features(ws, ["activity"], keys)))
    labels, scores = model.predict(model.frame([{**online[r[0]], "segment": r[2]} for r in got]))
    assert [r[3] for r in got] == labels and [r[4] for r in got] == pytest.approx(scores)
    assert {r[5] for r in got} == {f"{NAME}@1"}
    catalog = CatalogStore(ws).load()
    entry = catalog.table("churn_scores")
    assert entry.row_count == 240 and entry.primary_key == ["customer_id"] and entry.source == f"batch:{job.id}"
    lineage = {x.column: set(x.sources) for x in catalog.lineage if x.table == "churn_scores"}
    assert {"activity.orders_90d", "activity.spend_90d", "churn_labels.segment"} <= lineage["prediction"]
    assert lineage["segment"] == {"churn_labels.segment"}
    assert done.lineage["model"] == f"{NAME}@1" and done.lineage["rows"] == 240


def test_a_row_that_does_not_fit_is_refused_before_a_job_exists(ws):
    sql = ("SELECT customer_id, CASE WHEN customer_id = 4 THEN 'gold' ELSE segment END AS segment, 1 AS orders_90d, "
           "2.5 AS spend_90d FROM churn_labels ORDER BY customer_id, label_at")
    before = len(JobStore(ws).list())
    with pytest.raises(UserError, match=r"row 9: column `segment` is 'gold'; expected one of 'pro', 'retail'"):
        plan_score(ws, {"model": NAME, "sql": sql, "into": "gold_scores"})
    with pytest.raises(UserError, match="`activity` already exists"):
        plan_score(ws, {"model": NAME, "sql": SOURCE, "into": "activity"})
    with pytest.raises(UserError, match="prediction"):
        plan_score(ws, {"model": NAME, "sql": "SELECT customer_id, segment, 1 AS prediction FROM churn_labels"})
    assert len(JobStore(ws).list()) == before and CatalogStore(ws).load().table("gold_scores") is None

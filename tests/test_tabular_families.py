"""The other model families and the other task, run in-process by the job worker: a scikit-learn regressor of next
month's spend (with a residual plot, beating the mean) and an XGBoost classifier of churn, both tuned for two
trials and registered pending approval."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtimes.jobs.kinds import kind
from runtimes.jobs.store import JobStore
from runtimes.jobs.worker import StopFlag, run_job
from tests.tabular_workspace import build_churn_workspace, churn_spec


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from core.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("tabular-families") / "ws")
    ws.create()
    build_churn_workspace(ws, customers=80, months=5)
    return ws


def trained(ws, spec):
    """Plan as at submit, store the job, and run its work in this process (no worker process to spawn)."""
    p = kind("train").plan(ws, spec)
    store = JobStore(ws)
    job = store.create("train", p.spec, p.plan, p.progress)
    run_job(ws, store, job.id, StopFlag())
    return store.get(job.id)


def test_a_scikit_learn_regressor_beats_the_mean_and_plots_residuals(ws):
    spec = churn_spec(family="sklearn", trials=2, name="spend")
    spec["label"] = {**spec["label"], "column": "next_spend"}
    job = trained(ws, spec)
    assert job.status == "succeeded", job.error
    assert job.plan["task"] == "regression" and job.plan["metric"] == "rmse"
    report = json.loads(Path(job.record["report"]).read_text())
    assert report["beats_baseline"] and report["value"] < report["baseline"]
    assert (Path(job.record["report"]).parent / "residuals.png").read_bytes()[:4] == b"\x89PNG"
    assert job.model_version == "spend/1"


def test_an_xgboost_classifier_is_tuned_and_registered(ws):
    job = trained(ws, churn_spec(family="xgboost", trials=2, name="churn-xgb"))
    assert job.status == "succeeded", job.error
    report = json.loads(Path(job.record["report"]).read_text())
    assert report["metric"] == "roc_auc" and report["beats_baseline"]
    assert job.model_version == "churn-xgb/1"


def test_without_a_label_time_the_split_is_stratified(ws):
    spec = churn_spec(features=[], columns=["segment", "next_spend"], trials=1)
    del spec["label"]["time"]
    p = kind("train").plan(ws, spec)
    assert p.plan["split"]["kind"] == "stratified"
    assert "stratified" in p.plan["reasons"]["split"]

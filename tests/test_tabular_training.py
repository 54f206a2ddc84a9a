"""Training a model on tables end to end as a job: a churn label with features from a feature view and the label
table, LightGBM tuned for a few trials, a report that beats the baseline, MLflow parent and trial runs, and a
version registered pending approval with its lineage."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtimes.jobs import lifecycle
from runtimes.models.registry import list_versions
from runtimes.models.tracking import client
from tests.tabular_workspace import build_churn_workspace, churn_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from core.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("tabular") / "ws")
    ws.create()
    build_churn_workspace(ws)
    job = lifecycle.submit(ws, "train", churn_spec())
    return ws, lifecycle.wait(ws, job.id, timeout_s=300)


def test_the_job_succeeds_and_beats_the_baseline(trained):
    ws, job = trained
    assert job.status == "succeeded", job.error
    report = json.loads(Path(job.record["report"]).read_text())
    assert report["metric"] == "roc_auc" and report["baseline"] == pytest.approx(0.5)
    assert report["value"] > 0.75 and report["beats_baseline"]
    low, high = report["ci95"]
    assert low < report["value"] < high and low > report["baseline"]
    assert report["tuning"]["trials"] == 4


def test_the_report_has_roc_and_precision_recall_plots(trained):
    ws, job = trained
    folder = Path(job.record["report"]).parent
    for name in ("roc.png", "precision_recall.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mlflow_has_one_parent_run_with_a_child_run_per_trial(trained):
    ws, job = trained
    c = client(ws)
    parent = c.get_run(job.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["test_roc_auc"] > parent.data.metrics["baseline_roc_auc"]
    children = c.search_runs([parent.info.experiment_id],
                             filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 4
    artifacts = {a.path for a in c.list_artifacts(parent.info.run_id, "report")}
    assert "report/roc.png" in artifacts


def test_the_version_is_registered_pending_approval_with_its_lineage(trained):
    ws, job = trained
    versions = list_versions(ws, "churned-lightgbm")
    assert [v.approval for v in versions] == ["pending"]
    v = versions[0]
    assert job.model_version == f"{v.name}/{v.version}"
    assert v.lineage["job_id"] == job.id and len(v.lineage["dataset_hash"]) == 64
    assert "churn_labels" in v.lineage["dataset_sql"]
    assert json.loads(v.tags["lathe.feature_views"]) == ["activity@1"]
    assert json.loads(v.tags["lathe.study"])["trials"] == 4
    assert (Path(v.source) / "model.joblib").exists()

"""Training a model on tables end to end as a job: a churn label with features from a feature view and the label
table, LightGBM tuned for a few trials, a report that beats the baseline with SHAP explanations and bias for the
column tagged sensitive in the catalog, MLflow parent and trial runs, and a version registered pending approval
with its lineage."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtimes.jobs import lifecycle
from runtimes.models.registry import get_version, list_versions
from runtimes.models.tracking import client
from tests.tabular_workspace import build_churn_workspace, churn_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from core.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("tabular") / "ws")
    ws.create()
    build_churn_workspace(ws)
    from catalog.metadata import Column, Table
    from catalog.store import CatalogStore

    with CatalogStore(ws).transaction() as tx:
        tx.put_table(Table(name="churn_labels", columns=[Column(name="segment", tags=["sensitive"])]))
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


def test_the_report_has_its_plots_explanations_and_bias_in_the_job_folder(trained):
    ws, job = trained
    folder = Path(job.record["report"]).parent
    report = json.loads((folder / "report.json").read_text())
    assert {"roc.png", "precision_recall.png", "calibration.png", "shap_importance.png", "shap_beeswarm.png",
            "fairness_segment.png"} <= set(report["plots"])
    document = (folder / "report.md").read_text()
    for name in report["plots"]:
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"![{name}]({name})" in document
    # churn follows recent orders in the planted data
    assert report["explanations"]["top_features"][0]["feature"] == "orders_90d"
    assert report["explanations"]["method"].startswith("TreeExplainer")
    assert len(report["explanations"]["individual"]) == 3
    assert report["explanations"]["individual"][0]["id"].startswith("customer_id ")
    bias = report["fairness"]["segment"]
    assert bias["is_feature"] and set(bias["after"]["by_group"]) == {"pro", "retail"}
    assert 0 <= bias["after"]["demographic_parity_difference"] <= 1
    assert "threshold of 0.1" in bias["after"]["verdict"] and "### `segment`" in document
    # the label by group was in the plan the job was approved on, as the report says it
    assert job.plan["bias_before"]["segment"]["verdict"] == bias["before"]["verdict"]
    assert "the label rate (share of `1`) differs by" in bias["before"]["verdict"]


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
    assert {"report/roc.png", "report/shap_importance.png", "report/fairness_segment.png", "report/report.md"} <= artifacts
    assert "fairness_segment_demographic_parity_difference" in parent.data.metrics
    [dataset] = parent.inputs.dataset_inputs
    assert dataset.dataset.digest == job.record["lineage"]["dataset_hash"][:16]
    assert json.loads(dataset.dataset.source)["tables"] == ["churn_labels"]


def test_the_version_is_registered_pending_approval_with_its_lineage(trained):
    ws, job = trained
    versions = list_versions(ws, "churned-lightgbm")
    assert [v.approval for v in versions] == ["pending"]
    v = versions[0]
    assert job.model_version == f"{v.name}/{v.version}"
    assert v.lineage["job_id"] == job.id and len(v.lineage["dataset_hash"]) == 64
    assert "churn_labels" in v.lineage["dataset_sql"]
    assert v.lineage["feature_views"] == ["activity@1"]
    assert v.lineage["study"]["trials"] == 4 and v.lineage["config"] == v.lineage["study"]["best_params"]
    assert set(v.lineage["study"]["best_params"]) == {"learning_rate", "num_leaves", "min_child_samples",
                                                      "feature_fraction", "lambda_l2"}
    assert v.lineage["dataset"]["tables"] == ["churn_labels"] and v.lineage["dataset"]["sensitive"] == ["segment"]
    assert "segment" in v.lineage["fairness"] and "test_roc_auc_ci95" in v.lineage["metrics"]
    assert (Path(v.source) / "model.joblib").exists()
    assert "challenger" in get_version(ws, v.name, v.version).aliases

"""The held-out report's parts on small planted data, without a job: bootstrap intervals that hold their point
estimate, plots that are real PNG images, SHAP ranking a planted strong feature first (tree explainer and the
model-agnostic fallback), fairness that flags a planted biased label and passes a fair one, and columns tagged
sensitive in the catalog found by the data loader."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.errors import UserError
from runtimes.tabular import estimators
from runtimes.tabular.metrics import baseline_predictions


def assert_png(path) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.verify()
    with Image.open(path) as im:
        assert im.size[0] >= 200 and im.size[1] >= 200
        # a blank canvas has one colour; a plot has lines, labels and markers
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20


def planted(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """`strong` decides the label; `noise` and the category `kind` do not."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"noise": rng.normal(size=n), "strong": rng.normal(size=n),
                      "kind": pd.Categorical(rng.choice(["a", "b", "c"], n))})
    y = ((2 * x["strong"] + rng.normal(scale=0.7, size=n)) > 0).astype(int).to_numpy()
    return x, y


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "log_loss", "f1", "rmse", "mae", "r2"])
def test_the_bootstrap_scores_each_resample_as_the_report_scores_its_estimate(metric):
    from runtimes.tabular.metrics import _plain, score

    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 120)
    p1 = np.clip(0.4 * y + 0.3 + rng.normal(scale=0.2, size=120), 0.001, 0.999)
    p1[:10] = p1[10:20]  # ties, which ROC AUC counts as half
    p = np.column_stack([1 - p1, p1]) if metric in ("roc_auc", "accuracy", "log_loss", "f1") else p1 * 10
    target = y if p.ndim == 2 else y * 10 + rng.normal(size=120)
    assert _plain(metric, p)(target, p) == pytest.approx(score(metric, target, p), rel=1e-9)


def test_classifier_report_has_intervals_around_its_estimates_and_its_plots(tmp_path):
    from runtimes.tabular.report import held_out_report

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p1 = np.clip(0.5 * y + 0.25 + rng.normal(scale=0.2, size=300), 0.01, 0.99)
    predicted = np.column_stack([1 - p1, p1])
    base = baseline_predictions("classification", y, len(y), 2)
    report = held_out_report(task="classification", metric="roc_auc", y=y, predicted=predicted, baseline=base,
                             seed=0, folder=tmp_path)
    low, high = report["ci95"]
    assert low <= report["value"] <= high and high - low < 0.2
    assert "bootstrap" in report["ci_method"] and "seed 0" in report["ci_method"]
    assert report["baseline"] == pytest.approx(0.5) and report["beats_baseline"]
    for name, (lo, hi) in report["other_metrics_ci95"].items():
        assert lo <= report["other_metrics"][name] <= hi, name
    assert set(report["plots"]) == {"roc.png", "precision_recall.png", "calibration.png"}
    for name in report["plots"]:
        assert_png(tmp_path / name)
    again = held_out_report(task="classification", metric="roc_auc", y=y, predicted=predicted, baseline=base,
                            seed=0, folder=tmp_path / "again")
    assert again["ci95"] == report["ci95"], "the interval is seeded"


def test_regressor_report_has_residual_plots_and_a_mean_baseline(tmp_path):
    from runtimes.tabular.report import held_out_report

    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, 200)
    predicted = y + rng.normal(scale=1.0, size=200)
    report = held_out_report(task="regression", metric="rmse", y=y, predicted=predicted,
                             baseline=baseline_predictions("regression", y, len(y), 0), seed=3, folder=tmp_path)
    low, high = report["ci95"]
    assert low <= report["value"] <= high
    assert report["beats_baseline"] and report["baseline"] > 2 * report["value"]
    assert set(report["plots"]) == {"residuals.png", "actual_vs_predicted.png"}
    for name in report["plots"]:
        assert_png(tmp_path / name)


@pytest.mark.parametrize("family, task, classes", [("lightgbm", "classification", 2), ("xgboost", "regression", 0),
                                                   ("sklearn", "classification", 2), ("lightgbm", "classification", 3)])
def test_shap_ranks_the_planted_feature_first(tmp_path, family, task, classes):
    from runtimes.tabular.explain import explain

    x, y = planted()
    target = {2: y, 3: np.digitize(x["strong"], [-0.5, 0.5]), 0: 3 * x["strong"].to_numpy() + 0.1 * y}[classes]
    model = estimators.build(family, task, {}, 0, classes, rounds=60)
    if family == "xgboost":
        model.set_params(early_stopping_rounds=None)
    estimators.fit(model, family, x, target)
    out = explain(model, x.iloc[:300], x.iloc[300:], task=task, classes=[str(c) for c in range(classes)] or None,
                  folder=tmp_path, ids=[f"row-{i}" for i in range(300, 400)])
    assert [f["feature"] for f in out["top_features"]][0] == "strong"
    top = out["top_features"]
    assert top[0]["mean_abs_shap"] > 3 * top[1]["mean_abs_shap"]
    # sklearn's trees with a category column are not read by the tree explainer: the sampled fallback explains them
    assert out["method"].startswith("TreeExplainer" if family != "sklearn" else "KernelExplainer")
    assert len(out["individual"]) == 3 and all(r["id"].startswith("row-") for r in out["individual"])
    assert len(out["plots"]) == 5
    for name in out["plots"]:
        assert_png(tmp_path / name)


def test_a_planted_biased_label_is_flagged_and_a_fair_one_passes(tmp_path):
    from runtimes.tabular.fairness import THRESHOLD, after_training, before_training

    rng = np.random.default_rng(4)
    n = 600
    group = pd.Series(rng.choice(["f", "m"], n))
    biased = np.where(group == "m", rng.random(n) < 0.6, rng.random(n) < 0.3).astype(int)
    fair = (rng.random(n) < 0.45).astype(int)

    before = before_training("gender", group, biased, task="classification", classes=["0", "1"])
    assert before["difference"] == pytest.approx(0.3, abs=0.08) and before["review"]
    assert "label rate" in before["verdict"] and f"{THRESHOLD:g}" in before["verdict"]

    # a model that learnt the biased label: it selects the group the label favoured more often
    p1 = np.clip(biased * 0.7 + 0.15 + rng.normal(scale=0.1, size=n), 0, 1)
    after = after_training("gender", group, biased, np.column_stack([1 - p1, p1]), task="classification",
                           classes=["0", "1"], folder=tmp_path)
    assert after["demographic_parity_difference"] > THRESHOLD and after["review"]
    by_group = after["by_group"]
    assert set(by_group) == {"f", "m"} and by_group["m"]["selection_rate"] > by_group["f"]["selection_rate"]
    assert {"accuracy", "selection_rate", "count"} <= set(by_group["f"])
    assert "selection rate differs by" in after["verdict"] and "review before approving" in after["verdict"]
    assert_png(tmp_path / after["plots"][0])

    q1 = np.clip(fair * 0.7 + 0.15 + rng.normal(scale=0.1, size=n), 0, 1)
    ok = after_training("gender", group, fair, np.column_stack([1 - q1, q1]), task="classification",
                        classes=["0", "1"], folder=tmp_path / "fair")
    assert ok["demographic_parity_difference"] < THRESHOLD and ok["equalized_odds_difference"] < THRESHOLD
    assert not ok["review"] and "within" in ok["verdict"]
    assert not before_training("gender", group, fair, task="classification", classes=["0", "1"])["review"]


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_regressors_and_many_classes_are_compared_by_group_on_their_own_measures(tmp_path, task):
    from runtimes.tabular.fairness import SPREAD_THRESHOLD, THRESHOLD, after_training, before_training

    rng = np.random.default_rng(7)
    group = pd.Series(rng.choice(["north", "south"], 400))
    if task == "regression":
        y = rng.normal(size=400) + np.where(group == "south", 1.0, 0.0)  # the label itself differs by group
        predicted, classes = y + rng.normal(scale=0.3, size=400), None
    else:
        y = rng.integers(0, 3, 400)
        predicted, classes = np.eye(3)[np.where(group == "south", y, (y + 1) % 3)], ["a", "b", "c"]  # wrong for north
    kind = "regression" if task == "regression" else "classification"
    before = before_training("region", group, y, task=kind, classes=classes)
    after = after_training("region", group, y, predicted, task=kind, classes=classes, folder=tmp_path)
    if task == "regression":
        assert before["review"] and before["difference"] > SPREAD_THRESHOLD and "standard deviations" in before["verdict"]
        assert after["mean_prediction_difference"] > SPREAD_THRESHOLD and after["review"]
        assert {"mean_prediction", "mean_absolute_error"} <= set(after["by_group"]["north"])
    else:
        assert not before["review"]
        assert after["accuracy_difference"] == pytest.approx(1.0) and after["review"] and THRESHOLD < 1
        assert "yes/no predictions" in after["verdict"]
    assert_png(tmp_path / after["plots"][0])


def test_a_numeric_sensitive_column_is_compared_in_quartiles(tmp_path):
    from runtimes.tabular.fairness import after_training

    rng = np.random.default_rng(5)
    age = pd.Series(rng.integers(18, 90, 400))
    y = rng.integers(0, 2, 400)
    p1 = np.clip(y * 0.6 + 0.2 + rng.normal(scale=0.1, size=400), 0, 1)
    out = after_training("age", age, y, np.column_stack([1 - p1, p1]), task="classification", classes=["0", "1"],
                         folder=tmp_path)
    assert len(out["by_group"]) == 4 and "quartiles" in out["grouping"]


def test_columns_tagged_sensitive_in_the_catalog_are_checked_and_unknown_ones_refused(tmp_path):
    from catalog.metadata import Column, Table
    from catalog.store import CatalogStore
    from core.workspace import Workspace
    from runtimes.tabular.data import load
    from runtimes.tabular.spec import TrainSpec
    from tests.tabular_workspace import build_churn_workspace

    ws = Workspace(tmp_path / "ws")
    ws.create()
    build_churn_workspace(ws, customers=12, months=2)
    spec = {"label": {"source": "churn_labels", "column": "churned"}, "columns": ["next_spend"]}
    assert load(ws, TrainSpec.parse(spec)).sensitive == []
    with CatalogStore(ws).transaction() as tx:
        tx.put_table(Table(name="churn_labels", columns=[Column(name="segment", tags=["Sensitive"])]))
    data = load(ws, TrainSpec.parse(spec))
    assert data.sensitive == ["segment"] and "segment" in data.frame.columns and "segment" not in data.features
    query = {**spec, "label": {"source": "SELECT churned, next_spend, segment FROM churn_labels WHERE next_spend > 0",
                               "column": "churned"}}
    assert load(ws, TrainSpec.parse(query)).sensitive == ["segment"]
    named = load(ws, TrainSpec.parse({**spec, "sensitive": ["customer_id"]}))
    assert named.sensitive == ["customer_id", "segment"]
    with pytest.raises(UserError, match="no column `gender`.*sensitive"):
        load(ws, TrainSpec.parse({**spec, "sensitive": ["gender"]}))


def test_a_column_named_sensitive_on_the_command_line_is_checked_in_the_plan(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app
    from core.workspace import Workspace
    from tests.tabular_workspace import build_churn_workspace

    ws = Workspace(tmp_path / "ws")
    ws.create()
    build_churn_workspace(ws, customers=40, months=3)
    r = CliRunner().invoke(app, ["--workspace", str(ws.root), "train", "--label", "churn_labels", "--target", "churned",
                                 "--column", "next_spend", "--sensitive", "segment", "--dry-run"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if "bias before training" in x)
    assert "label rate (share of `1`) differs by" in line and "groups of `segment`" in line and "threshold" in line


def test_the_training_rows_hash_and_order_do_not_depend_on_the_order_a_query_returned_them():
    from runtimes.tabular.data import content_hash, in_content_order

    rows, _ = planted(50)
    shuffled = rows.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert not rows.equals(shuffled)
    assert content_hash(rows) == content_hash(shuffled)
    pd.testing.assert_frame_equal(in_content_order(rows), in_content_order(shuffled))
    changed = rows.copy()
    changed.loc[7, "strong"] += 1e-9
    assert content_hash(changed) != content_hash(rows)  # a changed value is a change

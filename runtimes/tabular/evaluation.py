"""Everything the report says about one trained model, made in the worker after the refit: the held-out metrics
and plots, SHAP explanations and bias per sensitive column (before training on the training rows, after on the
held-out rows), written beside the PNGs as `report.json` and `report.md`."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.tabular.explain import explain
from runtimes.tabular.fairness import after_training, before_training
from runtimes.tabular.metrics import baseline_predictions
from runtimes.tabular.report import held_out_report
from runtimes.tabular.report_markdown import markdown


def evaluate(p: Any, model: Any, x: Any, y: np.ndarray, frame: Any, parts: dict[str, Any], tuning: dict[str, Any],
             sensitive: list[str], folder: Path) -> dict[str, Any]:
    """`p`: the plan; `x`: model inputs of every row; `frame`: the labelled rows (label, keys, sensitive columns)."""
    train, test = parts["train"], parts["test"]
    n_classes = len(p.classes or ())
    predicted = model.predict_proba(x.iloc[test]) if p.task == "classification" else model.predict(x.iloc[test])
    report = held_out_report(task=p.task, metric=p.metric, y=y[test], predicted=predicted,
                             baseline=baseline_predictions(p.task, y[train], len(test), n_classes),
                             seed=p.spec.seed, folder=folder)
    report["baseline_kind"] = p.baseline["kind"]
    report["tuning"] = tuning
    report["explanations"] = explain(model, x.iloc[train], x.iloc[test], task=p.task, classes=p.classes,
                                     folder=folder, ids=_row_names(frame.iloc[test], p.spec.label), seed=p.spec.seed)
    report["fairness"] = {}
    for column in sensitive:
        before = before_training(column, frame[column].iloc[train], y[train], task=p.task, classes=p.classes)
        after = after_training(column, frame[column].iloc[test], y[test], predicted, task=p.task, classes=p.classes,
                               folder=folder)
        report["fairness"][column] = {"before": before, "after": after, "is_feature": column in p.features,
                                      "review": bool(before["review"] or after["review"])}
    report["plots"] = (report["plots"] + report["explanations"]["plots"]
                       + [f for v in report["fairness"].values() for f in v["after"]["plots"]])
    (folder / "report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    (folder / "report.md").write_text(markdown(p, report), encoding="utf-8")
    return report


def report_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The report's numbers as MLflow metrics of the job's run."""
    m = report["metric"]
    out = {f"test_{m}": report["value"], f"test_{m}_ci_low": report["ci95"][0], f"test_{m}_ci_high": report["ci95"][1],
           f"baseline_{m}": report["baseline"]}
    out.update({f"test_{k}": v for k, v in report["other_metrics"].items()})
    for column, f in report["fairness"].items():
        column = re.sub(r"[^A-Za-z0-9_.-]+", "_", column)  # a metric name takes few characters
        for key in ("demographic_parity_difference", "equalized_odds_difference", "accuracy_difference",
                    "mean_prediction_difference", "error_difference"):
            if key in f["after"]:
                out[f"fairness_{column}_{key}"] = f["after"][key]
        if "difference" in f["before"]:
            out[f"fairness_{column}_label_difference"] = f["before"]["difference"]
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def _row_names(rows: Any, label: Any) -> list[str]:
    """Each held-out row by its entity key and label time where the label has them."""
    if not label.entity:
        return [f"row {i}" for i in rows.index]
    keys = rows[label.entity].astype(str).tolist()
    if label.time:
        return [f"{label.entity} {k} at {t}" for k, t in zip(keys, rows[label.time].astype(str))]
    return [f"{label.entity} {k}" for k in keys]

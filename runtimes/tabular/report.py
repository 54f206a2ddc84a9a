"""The held-out report of a trained model: its metric and the others of its task, each with a seeded percentile
bootstrap interval, beside the baseline's (majority class / training mean) and whether the model beats it; and plots
as PNGs — ROC, precision-recall and calibration for a binary classifier, a confusion matrix for more classes,
residuals and actual-against-predicted for a regressor (scikit-learn's displays)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtimes.tabular.figures import pyplot, save
from runtimes.tabular.metrics import better, bootstrap_ci, score

BOOTSTRAP_ROUNDS = 500
LEVEL = 0.95


def held_out_report(*, task: str, metric: str, y: Any, predicted: Any, baseline: Any, seed: int,
                    folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    y, predicted = np.asarray(y), np.asarray(predicted)

    def ci(name: str, p: Any) -> list[float]:
        return list(bootstrap_ci(name, y, p, rounds=BOOTSTRAP_ROUNDS, level=LEVEL, seed=seed))

    value = score(metric, y, predicted)
    base = score(metric, y, baseline)
    report: dict[str, Any] = {
        "metric": metric, "value": value, "ci95": ci(metric, predicted), "baseline": base,
        "baseline_ci95": ci(metric, baseline), "beats_baseline": better(metric, value, base), "rows": int(len(y)),
        "ci_method": f"percentile bootstrap: {BOOTSTRAP_ROUNDS} resamples (with replacement) of the {len(y):,} "
                     f"held-out rows, seed {seed}, {LEVEL:.0%} interval"}
    others = ("accuracy", "log_loss") if task == "classification" else ("mae", "r2")
    report["other_metrics"] = {m: score(m, y, predicted) for m in others if m != metric}
    report["other_metrics_ci95"] = {m: ci(m, predicted) for m in report["other_metrics"]}
    report["plots"] = _plots(task, y, predicted, folder)
    return report


def _plots(task: str, y: np.ndarray, p: np.ndarray, folder: Path) -> list[str]:
    plt = pyplot()
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import (ConfusionMatrixDisplay, PrecisionRecallDisplay, PredictionErrorDisplay,
                                 RocCurveDisplay)

    written: list[str] = []

    def figure(title: str) -> tuple[Any, Any]:
        fig, ax = plt.subplots(figsize=(4.8, 4.2))
        ax.set_title(title)
        return fig, ax

    if task == "classification" and p.ndim == 2 and p.shape[1] == 2:
        fig, ax = figure("ROC, held-out rows")
        RocCurveDisplay.from_predictions(y, p[:, 1], name="model", ax=ax, plot_chance_level=True)
        save(fig, folder, "roc.png", written)
        fig, ax = figure("Precision-recall, held-out rows")
        PrecisionRecallDisplay.from_predictions(y, p[:, 1], name="model", ax=ax, plot_chance_level=True)
        save(fig, folder, "precision_recall.png", written)
        fig, ax = figure("Calibration, held-out rows (10 quantile bins)")
        CalibrationDisplay.from_predictions(y, p[:, 1], n_bins=10, strategy="quantile", name="model", ax=ax)
        save(fig, folder, "calibration.png", written)
    elif task == "classification":
        fig, ax = figure("Confusion matrix, held-out rows")
        ConfusionMatrixDisplay.from_predictions(y, p.argmax(axis=1), ax=ax, colorbar=False)
        save(fig, folder, "confusion_matrix.png", written)
    else:
        fig, ax = figure("Residuals, held-out rows")
        PredictionErrorDisplay.from_predictions(y, p, kind="residual_vs_predicted", ax=ax,
                                                scatter_kwargs={"s": 8, "alpha": 0.6})
        save(fig, folder, "residuals.png", written)
        fig, ax = figure("Actual against predicted, held-out rows")
        PredictionErrorDisplay.from_predictions(y, p, kind="actual_vs_predicted", ax=ax,
                                                scatter_kwargs={"s": 8, "alpha": 0.6})
        save(fig, folder, "actual_vs_predicted.png", written)
    return written

"""The held-out report of a trained model: its metric with a bootstrap confidence interval beside the baseline's,
whether it beats the baseline, and plots as PNGs — ROC and precision-recall curves for a binary classifier,
residuals for a regressor."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtimes.tabular.metrics import better, bootstrap_ci, score


def held_out_report(*, task: str, metric: str, y: Any, predicted: Any, baseline: Any, seed: int,
                    folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    value = score(metric, y, predicted)
    base = score(metric, y, baseline)
    lo, hi = bootstrap_ci(metric, y, predicted, seed=seed)
    report: dict[str, Any] = {"metric": metric, "value": value, "ci95": [lo, hi], "baseline": base,
                              "beats_baseline": better(metric, value, base), "rows": int(len(y))}
    others = ("accuracy", "log_loss") if task == "classification" else ("mae", "r2")
    report["other_metrics"] = {m: score(m, y, predicted) for m in others if m != metric}
    report["plots"] = _plots(task, np.asarray(y), np.asarray(predicted), folder)
    return report


def _plots(task: str, y: np.ndarray, p: np.ndarray, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn import metrics as m

    written = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=90)
        plt.close(fig)
        written.append(name)

    if task == "classification" and p.ndim == 2 and p.shape[1] == 2:
        fpr, tpr, _ = m.roc_curve(y, p[:, 1])
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(fpr, tpr, label=f"model (AUC {m.auc(fpr, tpr):.3f})")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, held-out rows")
        ax.legend(loc="lower right")
        save(fig, "roc.png")
        precision, recall, _ = m.precision_recall_curve(y, p[:, 1])
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(recall, precision, label=f"model (AP {m.average_precision_score(y, p[:, 1]):.3f})")
        ax.axhline(y.mean(), linestyle="--", color="grey", label="positive share")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, held-out rows")
        ax.legend(loc="lower left")
        save(fig, "precision_recall.png")
    elif task == "regression":
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.scatter(p, y - p, s=8, alpha=0.6)
        ax.axhline(0, color="grey", linestyle="--")
        ax.set(xlabel="predicted", ylabel="actual − predicted", title="Residuals, held-out rows")
        save(fig, "residuals.png")
    return written

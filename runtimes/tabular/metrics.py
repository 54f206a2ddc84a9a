"""Scoring a model on held-out rows: the metric, whether higher is better, the baseline a model must beat
(majority class / mean) and a bootstrap confidence interval."""
from __future__ import annotations

from typing import Any

import numpy as np

HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "f1": True, "log_loss": False, "rmse": False, "mae": False,
                    "r2": True}


def score(metric: str, y: Any, predicted: Any) -> float:
    """`predicted`: class probabilities (n × classes) for a classifier, values for a regressor."""
    from sklearn import metrics as m

    y = np.asarray(y)
    p = np.asarray(predicted)
    if metric == "roc_auc":
        return float(m.roc_auc_score(y, p[:, 1]) if p.shape[1] == 2 else m.roc_auc_score(y, p, multi_class="ovr"))
    if metric == "log_loss":
        return float(m.log_loss(y, p, labels=list(range(p.shape[1]))))
    if metric in ("accuracy", "f1"):
        hard = p.argmax(axis=1)
        return float(m.accuracy_score(y, hard) if metric == "accuracy" else
                     m.f1_score(y, hard, average="binary" if p.shape[1] == 2 else "macro"))
    if metric == "rmse":
        return float(np.sqrt(m.mean_squared_error(y, p)))
    if metric == "mae":
        return float(m.mean_absolute_error(y, p))
    return float(m.r2_score(y, p))


def baseline_predictions(task: str, y_train: Any, n: int, classes: int) -> Any:
    """The majority class's share as every row's probabilities, or the training mean as every value."""
    y_train = np.asarray(y_train)
    if task == "regression":
        return np.full(n, float(y_train.mean()))
    shares = np.bincount(y_train.astype(int), minlength=classes) / len(y_train)
    return np.tile(shares, (n, 1))


def bootstrap_ci(metric: str, y: Any, predicted: Any, *, rounds: int = 300, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval over the held-out rows; resamples a metric cannot score are skipped."""
    rng = np.random.default_rng(seed)
    y, p = np.asarray(y), np.asarray(predicted)
    scorer = _plain(metric, p)
    values = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        try:
            values.append(scorer(y[idx], p[idx]))
        except ValueError:  # a resample holding one class has no ROC AUC
            continue
    if not values:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _plain(metric: str, p: np.ndarray) -> Any:
    """The metric in a few NumPy lines where it has them (scikit-learn's input checks cost more than the metric on
    each of hundreds of resamples); the same numbers as `score`."""
    from scipy.stats import rankdata

    def auc(y: np.ndarray, q: np.ndarray) -> float:
        pos = y == 1
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if not n_pos or not n_neg:
            raise ValueError("one class only")
        return float((rankdata(q[:, 1])[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))

    binary = p.ndim == 2 and p.shape[1] == 2
    plain = {
        "accuracy": lambda y, q: float((q.argmax(axis=1) == y).mean()),
        "log_loss": lambda y, q: float(-np.log(np.clip((q / q.sum(axis=1, keepdims=True))[np.arange(len(y)), y.astype(int)],
                                                       np.finfo(q.dtype).eps, 1)).mean()),
        "rmse": lambda y, q: float(np.sqrt(np.mean((y - q) ** 2))),
        "mae": lambda y, q: float(np.mean(np.abs(y - q))),
        "r2": lambda y, q: float(1 - np.sum((y - q) ** 2) / np.sum((y - y.mean()) ** 2)),
        **({"roc_auc": auc} if binary else {}),
    }
    return plain.get(metric, lambda y, q: score(metric, y, q))


def better(metric: str, a: float, b: float) -> bool:
    return a > b if HIGHER_IS_BETTER[metric] else a < b

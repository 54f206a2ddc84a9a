"""Bias by group for each sensitive column, with fairlearn: before training, the label's rate per group in the
training rows; after, on the held-out rows, selection rate, accuracy and error rates per group (`MetricFrame`), the
demographic parity and equalized odds differences, a bar chart, and a plain verdict against a stated threshold."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.tabular.figures import pyplot, save

THRESHOLD = 0.1  # the largest difference in a rate between groups (10 points) before a person should review
SPREAD_THRESHOLD = 0.25  # for a number: the largest difference between group means, in the label's standard deviations
MIN_ROWS = 10  # a group with fewer rows is listed but its rates are too noisy to judge
MAX_GROUPS = 20  # more distinct values reads as an identifier, not a group
QUARTILES_FROM = 10  # a number with more distinct values is compared in quartiles


def groups_of(values: Any) -> tuple[Any, str]:
    """The group of each row as text, and how the groups were made."""
    import pandas as pd

    values = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) \
            and values.nunique() > QUARTILES_FROM:
        bins = pd.qcut(values, 4, duplicates="drop")
        return bins.astype("string").fillna("(missing)"), "quartiles of its values"
    return values.astype("string").fillna("(missing)"), "its values"


def before_training(column: str, values: Any, y: Any, *, task: str, classes: list[str] | None) -> dict[str, Any]:
    """The label per group in the training rows: the rate of the positive class (binary), of each class, or the mean."""
    groups, grouping = groups_of(values)
    y = np.asarray(y)
    names = sorted(groups.unique())
    out: dict[str, Any] = {"column": column, "grouping": grouping, "rows": "training rows"}
    if len(names) > MAX_GROUPS:
        return {**out, "skipped": _too_many(column, len(names)), "review": False, "verdict": _too_many(column, len(names))}
    mask = {g: (groups == g).to_numpy() for g in names}
    if task == "regression":
        sd = float(y.std()) or 1.0
        means = {g: float(y[m].mean()) for g, m in mask.items()}
        difference = (max(means.values()) - min(means.values())) / sd
        out["by_group"] = {g: {"rows": int(mask[g].sum()), "mean_label": means[g]} for g in names}
        what, limit = f"the mean label differs by {difference:.2f} standard deviations", SPREAD_THRESHOLD
    else:
        k = len(classes or ())
        shares = {g: np.bincount(y[m].astype(int), minlength=k) / max(int(m.sum()), 1) for g, m in mask.items()}
        spread = np.ptp(np.array(list(shares.values())), axis=0)
        c = k - 1 if k == 2 else int(spread.argmax())
        difference = float(spread[c])
        out["by_group"] = {g: {"rows": int(mask[g].sum()), "label_rate": float(shares[g][c])} for g in names}
        out["label_class"] = (classes or [])[c] if classes else c
        what = f"the label rate (share of `{out['label_class']}`) differs by {difference:.2f}"
        limit = THRESHOLD
    key = "mean_label" if task == "regression" else "label_rate"
    out.update(difference=difference, threshold=limit, review=difference > limit)
    rates = ", ".join(f"{g} {v[key]:.2f}" for g, v in out["by_group"].items())
    out["verdict"] = _judged(f"{what} between groups of `{column}` in the training rows ({rates})"
                             + (": a model that learns this label will likely repeat it" if out["review"] else ""),
                             out["review"], limit) + _small(out["by_group"])
    return out


def after_training(column: str, values: Any, y: Any, predicted: Any, *, task: str, classes: list[str] | None,
                   folder: Path) -> dict[str, Any]:
    """The model on the held-out rows by group. `predicted`: class probabilities, or values for a regressor."""
    from fairlearn import metrics as fm
    from sklearn.metrics import accuracy_score, mean_absolute_error

    groups, grouping = groups_of(values)
    y, p = np.asarray(y), np.asarray(predicted)
    out: dict[str, Any] = {"column": column, "grouping": grouping, "rows": "held-out rows"}
    if groups.nunique() > MAX_GROUPS:
        return {**out, "skipped": _too_many(column, groups.nunique()), "review": False,
                "verdict": _too_many(column, groups.nunique()), "plots": []}
    binary = task == "classification" and p.ndim == 2 and p.shape[1] == 2
    if task == "regression":
        metrics = {"count": fm.count, "mean_prediction": fm.mean_prediction, "mean_absolute_error": mean_absolute_error}
        hard = p
    else:
        hard = (p[:, 1] >= 0.5).astype(int) if binary else p.argmax(axis=1)
        metrics = {"count": fm.count, "accuracy": accuracy_score}
        if binary:
            metrics.update(selection_rate=fm.selection_rate, true_positive_rate=fm.true_positive_rate,
                           false_positive_rate=fm.false_positive_rate)
    frame = fm.MetricFrame(metrics=metrics, y_true=y, y_pred=hard, sensitive_features=groups.to_numpy())
    by_group = frame.by_group
    out["by_group"] = {str(g): {k: (int(v) if k == "count" else float(v)) for k, v in row.items()}
                       for g, row in by_group.iterrows()}
    spread = frame.difference()
    if binary:
        dp = float(fm.demographic_parity_difference(y, hard, sensitive_features=groups.to_numpy()))
        eo = float(fm.equalized_odds_difference(y, hard, sensitive_features=groups.to_numpy()))
        out.update(demographic_parity_difference=dp, equalized_odds_difference=eo,
                   accuracy_difference=float(spread["accuracy"]), threshold=THRESHOLD,
                   decision=f"the model gives `{classes[1] if classes else 1}` a probability of at least 0.5")
        out["review"] = dp > THRESHOLD or eo > THRESHOLD
        rates = ", ".join(f"{g} {v['selection_rate']:.2f}" for g, v in out["by_group"].items())
        told = f"selection rate differs by {dp:.2f} between groups of `{column}` ({rates})"
        told += f" and true/false positive rates by up to {eo:.2f}"
        out["verdict"] = _judged(told, out["review"], THRESHOLD, " on the demographic parity and equalized odds differences")
    elif task == "classification":
        acc = float(spread["accuracy"])
        out.update(accuracy_difference=acc, threshold=THRESHOLD, review=acc > THRESHOLD)
        out["verdict"] = _judged(f"accuracy differs by {acc:.2f} between groups of `{column}`", out["review"], THRESHOLD,
                                 " (parity and equalized odds are defined for yes/no predictions)")
    else:
        sd = float(y.std()) or 1.0
        mean_gap, error_gap = float(spread["mean_prediction"]) / sd, float(spread["mean_absolute_error"]) / sd
        out.update(mean_prediction_difference=mean_gap, error_difference=error_gap, threshold=SPREAD_THRESHOLD,
                   review=max(mean_gap, error_gap) > SPREAD_THRESHOLD)
        out["verdict"] = _judged(f"the mean prediction differs by {mean_gap:.2f} and the mean absolute error by "
                                 f"{error_gap:.2f} standard deviations of the label between groups of `{column}`",
                                 out["review"], SPREAD_THRESHOLD)
    out["verdict"] += _small({g: {"rows": v["count"]} for g, v in out["by_group"].items()})
    out["plots"] = _plot(column, by_group.drop(columns="count"), folder)
    return out


def _judged(told: str, review: bool, limit: float, on: str = "") -> str:
    if review:
        return f"{told}: review before approving (over the threshold of {limit:g}{on})"
    return f"{told}: within the threshold of {limit:g}{on}"


def _too_many(column: str, n: int) -> str:
    return (f"`{column}` has {n} distinct values: bias by group needs a column of a few groups "
            "(bin it in the label query)")


def _small(by_group: dict[str, dict[str, Any]]) -> str:
    few = [g for g, v in by_group.items() if v["rows"] < MIN_ROWS]
    return f"; too few rows to judge: {', '.join(few)} (under {MIN_ROWS})" if few else ""


def _plot(column: str, by_group: Any, folder: Path) -> list[str]:
    plt = pyplot()
    written: list[str] = []
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    by_group.plot.bar(ax=ax, rot=0)
    ax.set(title=f"By group of `{column}`, held-out rows", xlabel=column)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, frameon=False)  # below: no bar hidden
    save(fig, folder, f"fairness_{re.sub(r'[^A-Za-z0-9_]+', '_', column)}.png", written)
    return written

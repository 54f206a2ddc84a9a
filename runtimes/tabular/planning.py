"""The plan of a training request, made before any job exists: the task (inferred from the label, or checked
against the one asked for), the metric, the split (by time when the label has a time, else stratified random), the
baseline to beat, the model family's search space and the tuning budget, each with its reason. It raises
`UserError` for anything that cannot train."""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel

from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.tabular import estimators
from runtimes.tabular.data import Labelled, load
from runtimes.tabular.fairness import before_training
from runtimes.tabular.metrics import baseline_predictions, score
from runtimes.tabular.spec import METRICS, TrainSpec

_DEFAULT_TRIALS = 20
_MAX_CLASSES = 20  # more distinct integer labels than this reads as a quantity, not a class
_VALID_FRACTION = 0.2  # of the training rows, to tune and stop early on


class TrainPlan(BaseModel):
    spec: TrainSpec
    principal: Principal | None = None
    name: str
    task: str
    classes: list[str] | None
    metric: str
    features: list[str]
    feature_views: list[str]
    dataset_sql: str
    dataset_hash: str
    rows: int
    split: dict[str, Any]
    baseline: dict[str, Any]
    budget: dict[str, Any]
    search_space: dict[str, Any]
    reasons: dict[str, str]
    bias_before: dict[str, Any] = {}  # per sensitive column: the label by group in the training rows, with a verdict

    def explain(self) -> str:
        b = self.budget
        lines = [f"train `{self.name}`: {self.task} of `{self.spec.label.column}` from {len(self.features)} features "
                 f"({', '.join(self.features)}) on {self.rows:,} rows",
                 f"  task: {self.task} — {self.reasons['task']}",
                 f"  model: {self.spec.family} — {self.reasons['family']}",
                 f"  metric: {self.metric} — {self.reasons['metric']}",
                 f"  split: {self.split['kind']}: {self.split['train']:,} train, {self.split['valid']:,} validation, "
                 f"{self.split['test']:,} held out — {self.reasons['split']}",
                 f"  baseline to beat: {self.baseline['kind']}, {self.metric} {self.baseline['value']:.4f} held out",
                 f"  budget: " + (f"{b['trials']} trials" if b.get("trials") else "")
                 + (" or " if b.get("trials") and b.get("minutes") else "")
                 + (f"{b['minutes']:g} minutes" if b.get("minutes") else "") + f", pruning — {self.reasons['budget']}",
                 "  search space: " + ", ".join(f"{k} {v[1]:g}–{v[2]:g}{' (log)' if v[3] else ''}"
                                                for k, v in self.search_space.items())]
        if self.feature_views:
            lines.append(f"  feature views: {', '.join(self.feature_views)} (joined as of `{self.spec.label.time}`)")
        lines += [f"  bias before training: {b['verdict']}" for b in self.bias_before.values()]
        return "\n".join(lines)


def plan_train(ws: Workspace, spec: TrainSpec | dict[str, Any], principal: Principal | None = None) -> TrainPlan:
    spec = TrainSpec.parse(spec)
    data = load(ws, spec, principal)
    task, task_why, classes = _task(spec, data)
    metric, metric_why = _metric(spec, task, classes)
    y = encoded_label(data.frame[spec.label.column], classes)
    parts = split_rows(data.frame, y, spec, task)
    train, test = parts["train"], parts["test"]
    if task == "classification":
        for part in ("train", "test"):
            if len(np.unique(y[parts[part]])) < 2:
                raise UserError(f"the {part} split of `{spec.label.column}` holds one class only "
                                f"({parts['kind']} split of {len(y):,} rows): add rows or widen the label's time range")
    bias = {c: before_training(c, data.frame[c].iloc[train], y[train], task=task, classes=classes) for c in data.sensitive}
    base = baseline_predictions(task, y[train], len(test), len(classes or ()))
    baseline_value = score(metric, y[test], base)
    trials = spec.trials if spec.trials is not None else (None if spec.minutes else _DEFAULT_TRIALS)
    budget_why = ("as asked" if spec.trials or spec.minutes else
                  f"{_DEFAULT_TRIALS} trials: enough for TPE to beat random search on {len(estimators.SPACES[spec.family])} "
                  "parameters while staying in minutes on small tables") + "; unpromising trials are pruned by the "\
        "median rule and boosting stops early on the validation rows"
    return TrainPlan(
        spec=spec, principal=principal, name=spec.name or f"{spec.label.column}-{spec.family}", task=task,
        classes=classes, metric=metric, features=data.features, feature_views=data.feature_views,
        dataset_sql=data.sql, dataset_hash=data.content_hash, rows=len(y),
        split={"kind": parts["kind"], "train": len(parts["fit"]), "valid": len(parts["valid"]), "test": len(test),
               **({"cut": parts["cut"]} if "cut" in parts else {})},
        baseline={"kind": "majority class" if task == "classification" else "training mean", "value": baseline_value},
        budget={"trials": trials, "minutes": spec.minutes}, search_space=estimators.SPACES[spec.family],
        reasons={"task": task_why, "metric": metric_why, "family": estimators.WHY[spec.family], "budget": budget_why,
                 "split": parts["why"]}, bias_before=bias)


def _task(spec: TrainSpec, data: Labelled) -> tuple[str, str, list[str] | None]:
    import pandas as pd

    col = data.frame[spec.label.column]
    if col.isna().any():
        raise UserError(f"the label `{spec.label.column}` is empty in {int(col.isna().sum()):,} of {len(col):,} rows: "
                        "filter them out in the label query")
    distinct = col.nunique()
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    looks_classes = not numeric or (pd.api.types.is_integer_dtype(col) and distinct <= _MAX_CLASSES)
    if spec.task == "regression" and not numeric:
        raise UserError(f"the label `{spec.label.column}` is not a number ({col.dtype}): regression needs numbers; "
                        "ask for classification")
    task = spec.task or ("classification" if looks_classes else "regression")
    if spec.task:
        why = "as asked"
    elif task == "classification":
        why = f"the label has {distinct} distinct values" + ("" if numeric else " that are not numbers")
    else:
        why = f"the label is a number with {distinct:,} distinct values"
    if task == "regression":
        return task, why, None
    if distinct < 2:
        raise UserError(f"the label `{spec.label.column}` has one class only (`{col.iloc[0]}` in all {len(col):,} rows): "
                        "a classifier needs at least two")
    return task, why, sorted(str(v) for v in col.unique())


def _metric(spec: TrainSpec, task: str, classes: list[str] | None) -> tuple[str, str]:
    if spec.metric:
        if spec.metric not in METRICS[task]:
            raise UserError(f"metric `{spec.metric}` does not score {task}; choose one of {', '.join(METRICS[task])}")
        return spec.metric, "as asked"
    if task == "regression":
        return "rmse", "root mean squared error: in the label's own units, punishes large misses"
    if len(classes or ()) == 2:
        return "roc_auc", "ROC AUC: ranks positives above negatives whatever the threshold and class balance"
    return "log_loss", "log loss: scores the probabilities of every class"


def encoded_label(col: Any, classes: list[str] | None) -> np.ndarray:
    if classes is None:
        return col.astype("float64").to_numpy()
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[str(v)] for v in col], dtype=np.int64)


def split_rows(frame: Any, y: np.ndarray, spec: TrainSpec, task: str) -> dict[str, Any]:
    """Row positions of `fit` (training), `valid` (tuning, early stopping), `train` (both) and `test` (held out)."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(y))
    if spec.label.time:
        t = frame[spec.label.time].to_numpy()
        order = np.argsort(t, kind="stable")
        cut_at = t[order[int(len(order) * (1 - spec.test_fraction))]]
        train, test = positions[t < cut_at], positions[t >= cut_at]
        tt = t[train]
        vcut = tt[np.argsort(tt, kind="stable")[int(len(train) * (1 - _VALID_FRACTION))]] if len(train) else cut_at
        fit, valid = train[tt < vcut], train[tt >= vcut]
        if not len(fit) or not len(valid) or not len(test):
            raise UserError(f"`{spec.label.time}` has too few distinct times to split {len(y):,} rows by time")
        return {"kind": "time", "fit": fit, "valid": valid, "train": train, "test": test, "cut": str(cut_at),
                "why": f"the label has a time (`{spec.label.time}`): the model is tested on the rows from {cut_at} on "
                       f"(about the latest {spec.test_fraction:.0%}), after every row it learnt from, as it will be used"}
    strat = task == "classification"
    try:
        train, test = train_test_split(positions, test_size=spec.test_fraction, random_state=spec.seed,
                                       stratify=y if strat else None)
        fit, valid = train_test_split(train, test_size=_VALID_FRACTION, random_state=spec.seed,
                                      stratify=y[train] if strat else None)
    except ValueError as e:
        raise UserError(f"{len(y):,} rows cannot be split for training and testing: {e}") from None
    return {"kind": "stratified" if strat else "random", "fit": np.sort(fit), "valid": np.sort(valid),
            "train": np.sort(train), "test": np.sort(test),
            "why": "no label time: a random split" + (", stratified so each part keeps the class balance" if strat else "")}

"""A trained table model loaded for scoring, as the `train` job saves it (`model.joblib` and `inputs.json` in the
version's folder), with the registry's lineage (entity key, feature views): records checked against its inputs
(a bad one named by row, column and what was expected), then predicted.

It reads the model folder and the registry only; it never trains or writes anything.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UserError

MODEL_FILE, INPUTS_FILE = "model.joblib", "inputs.json"


class BadRecord(UserError):
    """One input record does not fit the model's inputs: the message names the row, the column and what fits."""


@dataclass
class TabularModel:
    id: str  # `name@version` as deployed
    estimator: Any
    features: list[str]  # the model's input columns, in order
    task: str  # classification or regression
    classes: list[str] | None  # class labels (the estimator predicts their positions)
    categories: dict[str, list[str]]  # text columns and the values seen in training
    entity: str | None = None  # the entity key column of the training labels
    feature_views: list[str] = field(default_factory=list)  # `view@version` joined at training, read online by key
    training_sql: str | None = None

    def frame(self, records: list[dict[str, Any]], first_row: int = 0) -> Any:
        """The records as the estimator's input frame; `BadRecord` for the first value that does not fit."""
        import numpy as np
        import pandas as pd

        columns: dict[str, list[Any]] = {c: [] for c in self.features}
        for i, rec in enumerate(records, first_row):
            if not isinstance(rec, dict):
                raise BadRecord(f"row {i}: a record is an object of column values, not {type(rec).__name__}")
            for c in self.features:
                if c not in rec:
                    raise BadRecord(f"row {i}: column `{c}` is missing; expected {self._expected(c)}")
                columns[c].append(self._value(i, c, rec[c]))
        out = {}
        for c in self.features:
            if c in self.categories:
                out[c] = pd.Categorical(columns[c], categories=self.categories[c])
            else:
                out[c] = np.asarray(columns[c], dtype="float64")
        return pd.DataFrame(out)

    def _value(self, row: int, column: str, v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None if column in self.categories else math.nan  # missing values: the trees route them
        if column in self.categories:
            text = str(v)
            if text not in self.categories[column]:
                raise BadRecord(f"row {row}: column `{column}` is {v!r}; expected {self._expected(column)}")
            return text
        if isinstance(v, dt.datetime):  # trained on times as epoch seconds, a naive one being UTC
            return float(int((v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)).timestamp()))
        if isinstance(v, numbers.Number) and not isinstance(v, complex) and math.isfinite(float(v)):
            return float(v)  # bools, Decimals (DuckDB's DECIMAL), NumPy scalars
        raise BadRecord(f"row {row}: column `{column}` is {v!r}; expected {self._expected(column)}")

    def _expected(self, column: str) -> str:
        if column in self.categories:
            known = self.categories[column]
            shown = ", ".join(repr(k) for k in known[:10]) + (", …" if len(known) > 10 else "")
            return f"one of {shown} (or null)"
        return "a finite number (or null)"

    def predict(self, x: Any) -> tuple[list[Any], list[float] | None]:
        """(predictions, scores): class labels and the positive class's probability for a binary classifier
        (each row's top probability otherwise); numbers and no scores for a regressor."""
        if self.task != "classification":
            return [float(v) for v in self.estimator.predict(x)], None
        proba = self.estimator.predict_proba(x)
        best = proba.argmax(axis=1)
        labels = [self.label(int(k)) for k in best]
        scores = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
        return labels, [float(s) for s in scores]

    def probabilities(self, x: Any) -> list[dict[str, float]]:
        proba = self.estimator.predict_proba(x)
        return [{str(self.label(k)): float(p) for k, p in enumerate(row)} for row in proba]

    def label(self, position: int) -> Any:
        """The class as the label column held it: a number where every class is one."""
        text = (self.classes or [])[position]
        return int(text) if all(_integer(c) for c in self.classes or []) else text


class OnlineFill:
    """The model's features missing from records that carry the entity key, read from the online feature store by
    that key (a value the record has wins); a key the store has nothing for is a `BadRecord`."""

    def __init__(self, ws: Any, model: TabularModel) -> None:
        self.ws, self.model, self.reader = ws, model, None

    def complete(self, records: list[dict[str, Any]], first_row: int = 0) -> list[dict[str, Any]]:
        m = self.model
        wanting = [i for i, r in enumerate(records)
                   if isinstance(r, dict) and m.entity and m.entity in r and any(c not in r for c in m.features)]
        if not wanting or not m.feature_views or self.ws is None:
            return records
        if self.reader is None:
            from runtimes.features.online_features import OnlineReader

            self.reader = OnlineReader(self.ws, m.feature_views)
        found = self.reader.get([records[i][m.entity] for i in wanting])
        out = list(records)
        for i, values in zip(wanting, found):
            if all(v is None for v in values.values()):
                raise BadRecord(f"row {first_row + i}: no online features for {m.entity} {records[i][m.entity]!r} "
                                f"in {', '.join(m.feature_views)}: send the features themselves, or materialize the "
                                "views (`lathe features materialize`)")
            out[i] = {**{k: v for k, v in values.items() if k in m.features}, **records[i]}
        return out


def _integer(text: str) -> bool:
    return text.lstrip("-").isascii() and text.lstrip("-").isdigit()


def is_tabular(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / MODEL_FILE).is_file() and (folder / INPUTS_FILE).is_file()


def load_folder(folder: str | Path, *, id: str, entity: str | None = None, feature_views: list[str] | None = None,
                training_sql: str | None = None) -> TabularModel:
    import joblib

    folder = Path(folder)
    if not is_tabular(folder):
        raise UserError(f"{folder} holds no table model ({MODEL_FILE} and {INPUTS_FILE}): train one with `lathe train`")
    inputs = json.loads((folder / INPUTS_FILE).read_text(encoding="utf-8"))
    return TabularModel(id=id, estimator=joblib.load(folder / MODEL_FILE), features=list(inputs["features"]),
                        task=inputs["task"], classes=inputs.get("classes"), categories=inputs.get("categories") or {},
                        entity=entity, feature_views=list(feature_views or []), training_sql=training_sql)


def served_info(version: Any) -> dict[str, Any]:
    """What an endpoint stores to serve a registered table model: its kind, entity key and feature views."""
    dataset = version.lineage.get("dataset") or {}
    label = dataset.get("label") if isinstance(dataset, dict) else None
    views = version.tags.get("lathe.feature_views") or "[]"
    try:
        feature_views = [str(v) for v in json.loads(views)]
    except json.JSONDecodeError:
        feature_views = []
    return {"kind": "tabular", "entity": (label or {}).get("entity"), "feature_views": feature_views}


def tabular_fields(served: Any) -> dict[str, Any]:
    """The endpoint row's extra fields for a registered table model (kind, entity key, feature views); {} else."""
    if served.version is None or served.adapter or not is_tabular(served.base):
        return {}
    return served_info(served.version)


def is_table_model(ws: Any, ref: str) -> bool:
    """Whether `ref` names a registered version the `train` job made (False for anything else, or nothing)."""
    from runtimes.models.refs import resolve_served

    try:
        served = resolve_served(ws, ref)
    except UserError:
        return False
    return served.version is not None and is_tabular(served.base)


def load_version(ws: Any, ref: str) -> TabularModel:
    """A registered, approved table model by reference (NAME, NAME@N, NAME@approved)."""
    from runtimes.models.refs import resolve_served

    served = resolve_served(ws, ref)
    if served.version is None or not is_tabular(served.base):
        raise UserError(f"`{ref}` is not a table model: score tables with a version the `train` job registered")
    info = served_info(served.version)
    return load_folder(served.base, id=served.id, entity=info["entity"], feature_views=info["feature_views"],
                       training_sql=served.training_sql)

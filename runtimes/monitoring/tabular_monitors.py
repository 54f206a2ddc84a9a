"""Monitors of endpoints that serve a table model: the window's served rows (their inputs, prediction and score, as
the endpoint captured them) against the model's training set, with the same drift tests as every monitor (feature
drift; prediction drift is the drift of `prediction` and `score`), quality once labels arrive (each served row
joined to the first label of its entity at or after the time it was scored), and bias drift per sensitive group
(the gap in selection rate between groups, training set against the window). Alerts come from the monitor's rules.

It reads the warehouse, the model folder and the registry; it writes only the cached training-set reference.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import UserError, validate_input
from core.workspace import Workspace
from runtimes.monitoring.monitors import Duration, Rule

PREDICTED = ("prediction", "score")
BIAS_LIMIT = 0.1  # a change in the selection-rate gap between groups above this is bias drift, by default


class LabelJoin(BaseModel):
    """Where the true outcomes arrive: a catalog table or one query with the entity key, a time and the label."""
    model_config = ConfigDict(extra="forbid")

    source: str = Field(..., min_length=1, description="a catalog table, or one read-only SELECT")
    entity: str = Field(..., min_length=1, description="the entity key column (as the model's)")
    time: str = Field(..., min_length=1, description="when the outcome was known: the first at or after a "
                      "prediction is its label")
    column: str = Field(..., min_length=1, description="the outcome column")


class TabularMonitorSpec(BaseModel):
    """What a table-model monitor watches; durations are written like 30m, 1h, 7d."""
    model_config = ConfigDict(extra="forbid")

    kind: Literal["tabular"] = "tabular"
    name: str = Field(..., min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    endpoint: str = Field(..., min_length=1)
    model: str = Field(..., min_length=1, description="the served version, NAME@VERSION")
    reference: Literal["training"] = "training"
    features: list[str] | None = Field(None, description="columns to test; default: the model's features, "
                                       "prediction and score")
    window: Duration = "1d"
    every: Duration = "1h"
    rules: list[Rule] = Field(default_factory=lambda: [Rule(kind="dataset_drift")])
    min_rows: int = Field(30, ge=1)
    labels: LabelJoin | None = None
    sensitive: list[str] = Field(default_factory=list, description="input columns whose groups are compared")

    @model_validator(mode="after")
    def _rules(self) -> "TabularMonitorSpec":
        for r in self.rules:
            if r.kind == "data_quality":
                raise ValueError("a table model's endpoint refuses rows that do not fit its inputs (400), so there is "
                                 "no data-quality rule: watch error_rate>SHARE instead")
            if r.kind == "bias_drift" and r.feature not in self.sensitive:
                raise ValueError(f"the rule `{r.text()}` needs `{r.feature}` among the sensitive columns "
                                 f"({', '.join(self.sensitive) or 'none given'})")
            if r.kind == "quality_below" and r.metric != "accuracy":
                raise ValueError("a table model's quality rule is on accuracy (accuracy<VALUE)")
            if r.kind == "quality_below" and self.labels is None:
                raise ValueError("a quality rule needs the labels to join (labels: source, entity, time, column)")
            if r.kind == "feature_drift" and self.features and r.feature not in self.features:
                raise ValueError(f"the rule `{r.text()}` watches `{r.feature}`, which this monitor does not test "
                                 f"({', '.join(self.features)})")
        return self

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "TabularMonitorSpec":
        return validate_input(cls, data, "monitor")


class Evaluation(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    summary: dict[str, Any]
    drift: Any
    reference: Any
    current: Any
    kinds: dict[str, str]


def served_model(ws: Workspace, endpoint: str) -> dict[str, Any] | None:
    """The table model an endpoint serves (its stored row's model), None for any other endpoint or none."""
    from runtimes.serving.endpoints.store import EndpointStore

    found = EndpointStore(ws).find(endpoint)
    models = found.models if found is not None else []
    return models[0] if models and models[0].get("kind") == "tabular" else None


def spec_for_endpoint(ws: Workspace, data: dict[str, Any], *, labels: str | None = None,
                      label_time: str | None = None, label_column: str | None = None) -> TabularMonitorSpec | None:
    """A table-model monitor of `data["endpoint"]` from the fields a person gives (None when the endpoint serves no
    table model): the model is the one served; the labels join on its entity key."""
    served = served_model(ws, data["endpoint"])
    if served is None:
        return None
    join = None
    if labels:
        if not (label_time and label_column and served.get("entity")):
            raise UserError("labels join on the entity key, the label's time and its column: give --label-time and "
                            "--label-column" + ("" if served.get("entity") else
                                                " (and this model was trained without an entity key)"))
        join = {"source": labels, "entity": served["entity"], "time": label_time, "column": label_column}
    return TabularMonitorSpec.parse({**data, "kind": "tabular", "model": served["id"], "labels": join})


def check_spec(ws: Workspace, spec: TabularMonitorSpec) -> None:
    """At creation: the model is a table model, and the columns and rules name its features."""
    model = _model(ws, spec.model)
    if model.task != "classification" and any(r.kind == "quality_below" for r in spec.rules):
        raise UserError(f"`{model.id}` is a regressor: its quality (rmse, mae) is in each run's report, and "
                        "accuracy rules are for classifiers")
    known = [*model.features, *PREDICTED]
    for f in [*(spec.features or []), *(r.feature for r in spec.rules if r.kind == "feature_drift")]:
        if f not in known:
            raise UserError(f"`{f}` is not a column of `{model.id}`'s monitoring: its columns are {', '.join(known)}")


def evaluate(ws: Workspace, monitor_id: str, spec: TabularMonitorSpec, start: dt.datetime,
             end: dt.datetime) -> Evaluation:
    from runtimes.monitoring.drift import detect_drift
    from runtimes.monitoring.evaluation import _change, _traffic
    from runtimes.monitoring.windows import load_traffic

    model = _model(ws, spec.model)
    notes: list[str] = []
    traffic = load_traffic(ws, spec.endpoint, start, end)
    current = served_rows(ws, spec.endpoint, start, end)
    reference, ref_note = training_reference(ws, model)
    notes += [ref_note] if ref_note else []
    columns = spec.features or [*model.features, *PREDICTED]
    kinds = {c: _kind(model, c) for c in columns}
    tested = [c for c in columns if c in current.columns and current[c].notna().any() and reference[c].notna().any()]
    skipped = {c: "no values in the window or the reference" for c in columns if c not in tested}
    drift = None
    if len(current) < spec.min_rows or len(reference) < spec.min_rows:
        notes.append(f"no drift test: {len(current):,} served rows in the window and {len(reference):,} in the "
                     f"training set, fewer than the monitor's min_rows ({spec.min_rows})")
    elif tested:
        drift = detect_drift(reference[tested].astype({c: object for c in tested if kinds[c] == "categorical"}),
                             current[tested].astype({c: object for c in tested if kinds[c] == "categorical"}),
                             {c: kinds[c] for c in tested})
    quality = _quality(ws, spec, model, current, notes)
    bias = {c: _bias(model, c, reference, current) for c in spec.sensitive}
    notes += [f"bias on {c}: selection-rate gap {b['reference_gap']:.2f} in training → {b['current_gap']:.2f} now"
              for c, b in bias.items() if b["current_gap"] is not None]
    summary = {
        "monitor": spec.name, "endpoint": spec.endpoint, "kind": "tabular", "model": model.id,
        "window": {"start": start.isoformat(), "end": end.isoformat(), "length": spec.window},
        "reference": {"kind": "training", "model": model.id, "rows": len(reference),
                      "about": f"reference: training set of {model.id}, {len(reference):,} rows"},
        "current_rows": len(current), "traffic": _traffic(traffic),
        "features": {"tested": tested, "skipped": skipped},
        "drift": drift.to_json() if drift else None, "data_quality": None,
        "drift_changes": {c.column: _change(reference[c.column], current[c.column], c.kind)
                          for c in (drift.columns if drift else [])},
        "quality": quality, "groups": [], "bias": bias, "notes": notes,
    }
    return Evaluation(summary=summary, drift=drift, reference=reference, current=current, kinds=kinds)


def bias_alerts(spec: Any, rule: Rule, summary: dict[str, Any], about: str) -> list[dict[str, Any]]:
    """The alert of a bias-drift rule, when the group gap moved more than its limit."""
    b = (summary.get("bias") or {}).get(rule.feature or "")
    limit = rule.value if rule.value is not None else BIAS_LIMIT
    if not b or b["current_gap"] is None or abs(b["current_gap"] - b["reference_gap"]) <= limit:
        return []
    rates = ", ".join(f"{g} {r:.0%}" for g, r in b["current"].items())
    return [dict(rule=rule.text(), feature=rule.feature, test="selection-rate gap change",
                 statistic=abs(b["current_gap"] - b["reference_gap"]), threshold=limit,
                 message=(f"bias drift on `{spec.endpoint}` by {rule.feature}: the gap in selection rate between "
                          f"groups went from {b['reference_gap']:.2f} in training to {b['current_gap']:.2f} "
                          f"(now {rates}; limit {limit:g}) ({about})"))]


# ---- the two sides ---------------------------------------------------------------------------------------
def served_rows(ws: Workspace, endpoint: str, start: dt.datetime, end: dt.datetime) -> Any:
    """The window's answered rows: their inputs as columns, with prediction, score, entity and ts."""
    import pandas as pd

    from catalog.warehouse import connect_reader
    from runtimes.monitoring.traffic import TRAFFIC_TABLE
    from runtimes.monitoring.windows import _naive

    with connect_reader(ws) as con:
        known = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        rows = [] if TRAFFIC_TABLE not in known else con.execute(
            f'SELECT request_id, ts, metadata FROM "{TRAFFIC_TABLE}" WHERE endpoint = ? AND route = \'invocations\' '
            "AND status < 400 AND ts >= ? AND ts < ? ORDER BY ts, request_id",
            [endpoint, _naive(start), _naive(end)]).fetchall()
    records = []
    for request_id, ts, meta in rows:
        m = json.loads(meta or "{}")
        records.append({**(m.get("inputs") or {}), "prediction": m.get("prediction"), "score": m.get("score"),
                        "entity": m.get("entity"), "ts": ts, "request_id": request_id})
    return pd.DataFrame(records, columns=None if records else ["prediction", "score", "entity", "ts", "request_id"])


def training_reference(ws: Workspace, model: Any) -> tuple[Any, str | None]:
    """The rows the model trained on, with its predictions and scores on them and their label (`_label`): read
    again as the training job read them, cached by the training data's hash."""
    import pandas as pd

    from runtimes.models.registry import get_version
    from runtimes.tabular.data import load
    from runtimes.tabular.spec import TrainSpec

    name, _, number = model.id.partition("@")
    version = get_version(ws, name, number)
    dataset = version.lineage.get("dataset") or {}
    expected_hash = version.lineage.get("dataset_hash") or "unknown"
    path = ws.root / "runs" / "monitors" / "baselines" / f"{name}@{number}" / f"training-{expected_hash[:16]}.parquet"
    if path.exists():
        return pd.read_parquet(path), None
    label = dataset.get("label") or {}
    from_views = set()
    if model.feature_views:
        from runtimes.features.selection import select_features

        from_views = {f.name for s in select_features(ws, model.feature_views) for f in s.features}
    spec = TrainSpec.parse({"label": label, "features": list(model.feature_views),
                            "columns": [c for c in model.features if c not in from_views]})
    data = load(ws, spec)
    note = None if data.content_hash == expected_hash else (
        f"the training rows read now differ from those {model.id} trained on (hash {expected_hash[:12]} → "
        f"{data.content_hash[:12]}): the reference is the rows as they are now")
    frame = data.frame[[*model.features]].copy()
    records = [{c: (None if pd.isna(v) else v) for c, v in r.items()} for r in frame.to_dict("records")]
    predictions, scores = model.predict(model.frame(records))
    frame["prediction"], frame["score"] = predictions, scores if scores else np.nan
    frame["_label"] = list(data.frame[label.get("column")])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return frame, note


# ---- quality and bias ------------------------------------------------------------------------------------
def _quality(ws: Workspace, spec: TabularMonitorSpec, model: Any, current: Any, notes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"labelled": 0, "accuracy": None, "mean_score": None, "labels": {}}
    if spec.labels is None or not len(current):
        return out
    joined = labelled(ws, spec.labels, current)
    out["labelled"] = int(joined["_label"].notna().sum())
    done = joined[joined["_label"].notna()]
    if not len(done):
        notes.append(f"no labels yet in {spec.labels.source} for the window's {len(current):,} served rows")
        return out
    truth = done["_label"].map(_same_type(model))
    if model.task == "classification":
        out["accuracy"] = float((done["prediction"].to_numpy() == truth.to_numpy()).mean())
        if model.classes and len(model.classes) == 2 and truth.nunique() == 2:
            from sklearn.metrics import roc_auc_score

            positive = model.label(1)
            out["roc_auc"] = float(roc_auc_score((truth == positive).astype(int), done["score"].astype(float)))
    else:
        err = done["prediction"].astype(float) - truth.astype(float)
        out["rmse"], out["mae"] = float(np.sqrt((err ** 2).mean())), float(err.abs().mean())
    out["labels"] = {str(k): int(v) for k, v in truth.value_counts().head(20).items()}
    return out


def labelled(ws: Workspace, labels: LabelJoin, current: Any) -> Any:
    """The served rows each with the first label of its entity at or after the time it was scored (`_label`)."""
    import pandas as pd

    from runtimes.serving.batch.source import read_rows, source_statement

    src = labels.source.strip()
    statement = source_statement(src, None) if src.isidentifier() else source_statement(None, src)
    rows = read_rows(ws, statement)
    frame = pd.DataFrame(rows.rows, columns=rows.columns)
    for c in (labels.entity, labels.time, labels.column):
        if c not in frame.columns:
            raise UserError(f"the labels ({labels.source}) have no column `{c}`; their columns: "
                            f"{', '.join(frame.columns)}")
    right = pd.DataFrame({"_key": frame[labels.entity].astype(str), "_at": pd.to_datetime(frame[labels.time]),
                          "_label": frame[labels.column]}).dropna(subset=["_at"]).sort_values("_at")
    left = current.assign(_key=current["entity"].astype(str), _at=pd.to_datetime(current["ts"]))
    left = left.reset_index(drop=True).assign(_order=lambda f: range(len(f))).sort_values("_at")
    joined = pd.merge_asof(left, right, on="_at", by="_key", direction="forward")
    return joined.sort_values("_order").drop(columns=["_key", "_at", "_order"])


def _bias(model: Any, column: str, reference: Any, current: Any) -> dict[str, Any]:
    """Selection rate (share predicted the positive class; the mean prediction of a regressor) per group of
    `column`, in the training set and the window, and the gap between the highest and lowest group."""
    def rates(frame: Any) -> dict[str, float]:
        if column not in frame.columns or not len(frame):
            return {}
        if model.task == "classification":
            chosen = (frame["prediction"] == model.label(len(model.classes or [1]) - 1)).astype(float)
        else:
            chosen = frame["prediction"].astype(float)
        return {str(g): float(v) for g, v in chosen.groupby(frame[column].astype(str)).mean().items()}

    ref, cur = rates(reference), rates(current)
    gap = lambda r: (max(r.values()) - min(r.values())) if len(r) > 1 else None  # noqa: E731
    return {"reference": ref, "current": cur, "reference_gap": gap(ref) or 0.0, "current_gap": gap(cur)}


def _same_type(model: Any) -> Any:
    if model.task != "classification":
        return float
    sample = model.label(0)
    return (lambda v: int(v)) if isinstance(sample, int) else (lambda v: str(v))


def _kind(model: Any, column: str) -> str:
    if column == "prediction":
        return "categorical" if model.task == "classification" else "numerical"
    return "categorical" if column in model.categories else "numerical"


def _model(ws: Workspace, ref: str) -> Any:
    from runtimes.models.registry import get_version
    from runtimes.monitoring.baselines import parse_model_ref
    from runtimes.tabular.scoring import is_tabular, load_folder, served_info

    name, number = parse_model_ref(ref)
    v = get_version(ws, name, number)
    if not is_tabular(v.source):
        raise UserError(f"`{ref}` is not a table model: monitor it with an LLM monitor (reference baseline)")
    info = served_info(v)
    return load_folder(v.source, id=f"{v.name}@{v.version}", entity=info["entity"],
                       feature_views=info["feature_views"], training_sql=v.lineage.get("dataset_sql"))

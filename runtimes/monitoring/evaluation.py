"""One monitor evaluation over a window: the reference and current features, the drift report, the data-quality
violations against the reference's constraints, and the operational, quality (from feedback) and per-group
(bias) figures, as a JSON-ready summary.

It reads the warehouse (sandboxed reader) and the stored baseline; it writes nothing but a judge's cache.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.workspace import Workspace
from runtimes.monitoring.drift import DriftReport, detect_drift
from runtimes.monitoring.features import FEATURES, JudgeSettings, Topics, judge_scores
from runtimes.monitoring.windows import load_feedback, load_traffic, traffic_features


@dataclass
class Evaluation:
    summary: dict[str, Any]
    drift: DriftReport | None
    reference: Any  # DataFrame of reference features
    current: Any  # DataFrame of current features
    kinds: dict[str, str]


def evaluate(ws: Workspace, monitor_id: str, spec: Any, start: dt.datetime, end: dt.datetime) -> Evaluation:
    topics = Topics.from_catalog(ws)
    judge = _judge(ws, monitor_id, spec)
    notes: list[str] = []
    traffic = load_traffic(ws, spec.endpoint, start, end)
    current = traffic_features(traffic, topics, **judge)
    if spec.reference == "baseline":
        from runtimes.monitoring.baselines import load_baseline

        base, reference = load_baseline(ws, spec.model)
        if judge:
            reference["judge_score"] = [np.nan if s is None else s for s in judge_scores(
                judge["judge"], list(reference["prompt"]), list(reference["response"]), judge["judge_dir"])]
        ref_info = {"kind": "baseline", "model": base.model, "rows": len(reference), "dataset_hash": base.dataset_hash,
                    "about": f"reference: training data of {base.model}, {len(reference):,} rows"}
        notes += base.warnings
    else:
        before = start - (end - start)
        ref_traffic = load_traffic(ws, spec.endpoint, before, start)
        reference = traffic_features(ref_traffic, topics, **judge)
        ref_info = {"kind": "previous_window", "start": before.isoformat(), "end": start.isoformat(),
                    "rows": len(reference), "quality": _quality(load_feedback(ws, spec.endpoint, before, start)),
                    "about": f"reference: {before.isoformat()[:16]} → {start.isoformat()[:16]}, {len(reference):,} rows"}

    tested, skipped = [], {}
    for f in spec.tested_features():
        if f not in reference.columns or reference[f].notna().sum() == 0:
            skipped[f] = "no values in the reference"
        elif current[f].notna().sum() == 0:
            skipped[f] = "no values in the current window"
        else:
            tested.append(f)
    kinds = {f: FEATURES[f] for f in tested}
    drift = None
    if len(current) < spec.min_rows or len(reference) < spec.min_rows:
        notes.append(f"no drift test: {len(current):,} answered requests in the window and {len(reference):,} in the "
                     f"reference, fewer than the monitor's min_rows ({spec.min_rows})")
    elif tested:
        drift = detect_drift(reference[tested], current[tested], kinds)

    data_quality = _data_quality(ws, spec, reference, current)
    feedback = load_feedback(ws, spec.endpoint, start, end)
    summary = {
        "monitor": spec.name, "endpoint": spec.endpoint,
        "window": {"start": start.isoformat(), "end": end.isoformat(), "length": spec.window},
        "reference": ref_info, "current_rows": len(current),
        "traffic": _traffic(traffic),
        "features": {"tested": tested, "skipped": skipped},
        "drift": drift.to_json() if drift else None,
        "data_quality": data_quality,
        "drift_changes": {c.column: _change(reference[c.column], current[c.column], c.kind)
                          for c in (drift.columns if drift else [])},
        "quality": _quality(feedback),
        "groups": _groups(traffic, current, feedback),
        "notes": notes,
    }
    return Evaluation(summary=summary, drift=drift, reference=reference, current=current, kinds=kinds)


def _data_quality(ws: Workspace, spec: Any, reference: Any, current: Any) -> dict[str, Any] | None:
    """The window's features checked against constraints: the baseline's stored ones, or suggested from the
    previous window. None when the window has no rows or the reference fewer than the monitor's min_rows (a
    handful of rows would suggest ranges and domains too narrow to hold)."""
    from runtimes.monitoring.data_quality import check_constraints, suggest_constraints

    watched = [f for f in spec.tested_features() if f in reference.columns and reference[f].notna().any()]
    if not len(current) or len(reference) < spec.min_rows or not watched:
        return None
    if spec.reference == "baseline":
        from runtimes.monitoring.baselines import constraints_path, load_constraints

        constraints, source = load_constraints(ws, spec.model), str(constraints_path(ws, spec.model))
    else:
        constraints, source = suggest_constraints(reference[watched]), "suggested from the previous window"
    constraints = constraints.model_copy(update={"features": [f for f in constraints.features if f.name in watched]})
    violations = check_constraints(constraints, current[[f for f in watched if f in current.columns]])
    return {"constraints": source, "checked_rows": len(current), "features": watched,
            "violations": [v.model_dump() for v in violations]}


def _judge(ws: Workspace, monitor_id: str, spec: Any) -> dict[str, Any]:
    if spec.judge is None:
        return {}
    settings = JudgeSettings(model=spec.judge.model, rubric=spec.judge.rubric, api_base=spec.judge.api_base)
    return {"judge": settings, "judge_dir": ws.root / "runs" / "monitors" / monitor_id}


def _traffic(traffic: Any) -> dict[str, Any]:
    n = len(traffic)
    if not n:
        return {"requests": 0, "errors": 0, "error_rate": 0.0, "latency_p50_ms": None, "latency_p95_ms": None,
                "latency_p99_ms": None, "prompt_tokens": 0, "completion_tokens": 0, "models": {}}
    latency = traffic["latency_ms"].to_numpy(dtype=float)
    errors = int((traffic["status"] >= 400).sum())
    p50, p95, p99 = (float(v) for v in np.percentile(latency, [50, 95, 99]))
    return {"requests": n, "errors": errors, "error_rate": errors / n, "latency_p50_ms": p50, "latency_p95_ms": p95,
            "latency_p99_ms": p99, "prompt_tokens": int(traffic["prompt_tokens"].sum()),
            "completion_tokens": int(traffic["completion_tokens"].sum()),
            "models": {str(k): int(v) for k, v in traffic["model"].value_counts().items()}}


def _quality(feedback: Any) -> dict[str, Any]:
    """Accuracy (share of feedback marked correct) and mean score, each over the feedback that gives it."""
    out: dict[str, Any] = {"labelled": int(len(feedback)), "accuracy": None, "mean_score": None, "labels": {}}
    if len(feedback):
        correct = feedback["correct"].dropna()
        scores = feedback["score"].dropna()
        out["accuracy"] = float(correct.astype(float).mean()) if len(correct) else None
        out["mean_score"] = float(scores.mean()) if len(scores) else None
        out["labels"] = {str(k): int(v) for k, v in feedback["label"].dropna().value_counts().head(20).items()}
    return out


def _groups(traffic: Any, current: Any, feedback: Any) -> list[dict[str, Any]]:
    """Per-group figures where the client sent a group (or feedback named one): the bias view."""
    import pandas as pd

    if not len(traffic):
        return []
    t = traffic[["request_id", "status", "latency_ms", "group"]].merge(
        feedback[["request_id", "correct", "score", "feedback_group"]] if len(feedback) else
        pd.DataFrame({"request_id": pd.Series([], dtype=object), "correct": [], "score": [], "feedback_group": []}),
        on="request_id", how="left")
    t["group"] = t["group"].where(t["group"].notna(), t["feedback_group"])
    if t["group"].isna().all():
        return []
    t = t.merge(current[["request_id", "response_length"]], on="request_id", how="left")
    out = []
    for name, g in t.groupby(t["group"].fillna("(none)"), sort=True):
        correct = g["correct"].dropna()
        score = g["score"].dropna()
        out.append({"group": str(name), "requests": int(len(g)), "error_rate": float((g["status"] >= 400).mean()),
                    "latency_p95_ms": float(np.percentile(g["latency_ms"].to_numpy(dtype=float), 95)),
                    "response_length_mean": _mean(g["response_length"]),
                    "labelled": int((g["correct"].notna() | g["score"].notna()).sum()),
                    "accuracy": float(correct.astype(float).mean()) if len(correct) else None,
                    "mean_score": float(score.mean()) if len(score) else None})
    return out


def _mean(s: Any) -> float | None:
    v = s.dropna()
    return float(v.mean()) if len(v) else None


def _change(reference: Any, current: Any, kind: str) -> str:
    """How a feature moved, in words: the mean for numbers, the category whose share moved most otherwise."""
    if kind == "numerical":
        r, c = reference.dropna(), current.dropna()
        return f"mean {r.mean():,.4g} → {c.mean():,.4g}, median {r.median():,.4g} → {c.median():,.4g}"
    r = reference.dropna().value_counts(normalize=True)
    c = current.dropna().value_counts(normalize=True)
    keys = r.index.union(c.index)
    diff = (c.reindex(keys, fill_value=0) - r.reindex(keys, fill_value=0)).abs()
    top = diff.idxmax()
    return f"share of `{top}` {r.get(top, 0):.0%} → {c.get(top, 0):.0%}"

"""A monitor run's report folder: `report.json` (the whole summary), `report.md` (for people), `summary.png`
(each feature's drift statistic against its threshold) and one PNG per drifted feature (reference against
current distribution).

Uses matplotlib's object API (no pyplot, no global backend), so it is safe in threads and servers. It writes
only inside the run's folder.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.monitoring.drift import binned_shares

_TOP_CATEGORIES = 15


def write_report(folder: Path, spec: Any, result: Any, alert_messages: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "report.json"]
    files[0].write_text(json.dumps({"spec": spec.model_dump(mode="json"), **result.summary}, indent=2, default=str),
                        encoding="utf-8")
    drift = result.drift
    if drift is not None:
        files.append(_summary_plot(folder / "summary.png", drift, spec.endpoint))
        for col in drift.columns:
            if col.drifted:
                files.append(_feature_plot(folder / f"{col.column}.png", col,
                                           result.reference[col.column], result.current[col.column]))
    files.append(folder / "report.md")
    files[-1].write_text(_markdown(result.summary, alert_messages, [f.name for f in files if f.suffix == ".png"]),
                         encoding="utf-8")
    return files


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _summary_plot(path: Path, drift: Any, endpoint: str) -> Path:
    cols = drift.columns
    fig = _figure(8, 0.45 * len(cols) + 1.6)
    ax = fig.add_subplot()
    # A log axis holds both kinds: small p-values and large distances each mark drift against their threshold.
    values = [max(c.statistic, 1e-12) for c in cols]
    ys = np.arange(len(cols))
    ax.barh(ys, values, color=["#c0392b" if c.drifted else "#27ae60" for c in cols])
    for y, c in zip(ys, cols):
        ax.plot([c.threshold, c.threshold], [y - 0.4, y + 0.4], color="black", linewidth=1.5)
        ax.annotate(f"{c.test_name}: {c.statistic:.3g}", (max(c.statistic, 1e-12), y), xytext=(4, -3),
                    textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.set_yticks(ys, [c.column for c in cols])
    ax.invert_yaxis()
    ax.set_xlabel("statistic (black mark: threshold; red: drifted)")
    verdict = "dataset drift" if drift.dataset_drift else "no dataset drift"
    ax.set_title(f"{endpoint}: {len(drift.drifted_columns)} of {len(cols)} features drifted ({verdict})")
    fig.savefig(path)
    return path


def _feature_plot(path: Path, col: Any, reference: Any, current: Any) -> Path:
    fig = _figure(7, 3.8)
    ax = fig.add_subplot()
    if col.kind == "numerical" and reference.dropna().nunique() + current.dropna().nunique() > 10:
        ref = reference.dropna().to_numpy(dtype=float)
        cur = current.dropna().to_numpy(dtype=float)
        edges, r, c = binned_shares(ref, cur, bins=min(30, max(5, int(math.sqrt(len(cur) + len(ref))))))
        centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        ax.bar(centers, r, width=width, alpha=0.5, label=f"reference ({len(ref):,})", color="#2980b9")
        ax.bar(centers, c, width=width, alpha=0.5, label=f"current ({len(cur):,})", color="#e67e22")
        ax.set_xlabel(col.column)
    else:
        r = reference.dropna().astype(str).value_counts(normalize=True)
        c = current.dropna().astype(str).value_counts(normalize=True)
        keys = list((r.add(c, fill_value=0)).sort_values(ascending=False).index[:_TOP_CATEGORIES])
        xs = np.arange(len(keys))
        ax.bar(xs - 0.2, [r.get(k, 0) for k in keys], width=0.4, label="reference", color="#2980b9")
        ax.bar(xs + 0.2, [c.get(k, 0) for k in keys], width=0.4, label="current", color="#e67e22")
        ax.set_xticks(xs, keys, rotation=30, ha="right")
    ax.set_ylabel("share of requests")
    ax.set_title(f"{col.column}: {col.test_name} {col.statistic:.3g} (threshold {col.threshold:g})")
    ax.legend()
    fig.savefig(path)
    return path


def _markdown(s: dict[str, Any], alerts: list[str], plots: list[str]) -> str:
    t = s["traffic"]
    lines = [f"# Monitor `{s['monitor']}` on `{s['endpoint']}`: {s.get('status', '')}", "",
             f"Window {s['window']['start']} → {s['window']['end']} ({s['window']['length']}); "
             f"{s['reference']['about']}.", ""]
    if t["requests"]:
        lines += [f"- requests: {t['requests']:,}, errors {t['errors']:,} ({t['error_rate']:.1%})",
                  f"- latency p50 / p95 / p99: {t['latency_p50_ms']:.0f} / {t['latency_p95_ms']:.0f} / "
                  f"{t['latency_p99_ms']:.0f} ms",
                  f"- tokens: {t['prompt_tokens']:,} prompt, {t['completion_tokens']:,} completion", ""]
    else:
        lines += ["No traffic in the window.", ""]
    if alerts:
        lines += ["## Alerts", ""] + [f"- {a}" for a in alerts] + [""]
    d = s.get("drift")
    if d:
        lines += ["## Drift", "", "| feature | test | statistic | threshold | drifted | change |", "|---|---|---|---|---|---|"]
        for c in d["columns"]:
            lines.append(f"| {c['column']} | {c['test_name']} | {c['statistic']:.3g} | {c['threshold']:g} | "
                         f"{'yes' if c['drifted'] else 'no'} | {s['drift_changes'].get(c['column'], '')} |")
        lines += ["", f"Dataset drift: {'yes' if d['dataset_drift'] else 'no'} ({d['share_drifted']:.0%} of features "
                      f"drifted; threshold {d['drift_share']:.0%}).", ""]
    for f, why in s["features"]["skipped"].items():
        lines.append(f"- `{f}` not tested: {why}")
    dq = s.get("data_quality")
    if dq:
        lines += ["", "## Data quality", "", f"{len(dq['violations'])} violations over {dq['checked_rows']:,} rows "
                  f"(constraints: {dq['constraints']}).", ""]
        lines += [f"- `{v['feature_name']}` {v['constraint_check_type']}: {v['description']}" for v in dq["violations"]]
    q = s.get("quality") or {}
    if q.get("labelled"):
        lines += ["", "## Quality", "", f"From feedback on {q['labelled']:,} requests: accuracy "
                  f"{_num(q['accuracy'])}, mean score {_num(q['mean_score'])}.", ""]
    if s.get("groups"):
        lines += ["## Per group", "", "| group | requests | error rate | p95 latency ms | mean response length | "
                  "accuracy | mean score |", "|---|---|---|---|---|---|---|"]
        for g in s["groups"]:
            lines.append(f"| {g['group']} | {g['requests']:,} | {g['error_rate']:.1%} | {g['latency_p95_ms']:.0f} | "
                         f"{_num(g['response_length_mean'])} | {_num(g['accuracy'])} | {_num(g['mean_score'])} |")
        lines.append("")
    lines += [f"- note: {n}" for n in s.get("notes", [])]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"

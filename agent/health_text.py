"""How an endpoint is doing, as the answer shows it: a small table of requests, error rate, latency p50/p95/p99 and
drift status, and a plain sentence when there was too little traffic for a drift test (or none at all).

A pure function of the endpoint report's JSON (`MonitorRun.to_json()`); the report tool computes the figures.
"""
from __future__ import annotations

import re
from typing import Any

_MIN_ROWS = re.compile(r"min_rows \((\d+)\)")


def _ms(v: Any) -> str:
    return f"{v:,.0f} ms" if isinstance(v, (int, float)) else "–"


def _drift(summary: dict[str, Any]) -> str:
    drift = summary.get("drift")
    if not drift:
        return "not tested"
    drifted, tested = drift.get("drifted_columns") or [], len(drift.get("columns") or [])
    if not drifted:
        return f"none in {tested} feature{'s' if tested != 1 else ''}"
    return f"{len(drifted)} of {tested} features: {', '.join(drifted)}"


def health_answer(report: dict[str, Any]) -> str:
    """Markdown: a headline naming the endpoint and the window, the figures in a one-row table, and why drift was
    not tested when it was not."""
    s = report.get("summary") or {}
    endpoint = report.get("endpoint") or s.get("endpoint") or "the endpoint"
    window = s.get("window") or {}
    days = f"{str(window.get('start', ''))[:10]} to {str(window.get('end', ''))[:10]}"
    ops = s.get("traffic") or {}
    n = int(ops.get("requests") or 0)
    if not n:
        return (f"No requests reached `{endpoint}` from {days}: there is nothing to measure, and too little traffic "
                "for a drift test.")
    lines = [f"**`{endpoint}`** from {days} (the last {window.get('length', 'period')}):", "",
             "| Requests | Error rate | Latency p50 | p95 | p99 | Drift |",
             "|---:|---:|---:|---:|---:|---|",
             f"| {n:,} | {float(ops.get('error_rate') or 0):.1%} | {_ms(ops.get('latency_p50_ms'))} | "
             f"{_ms(ops.get('latency_p95_ms'))} | {_ms(ops.get('latency_p99_ms'))} | {_drift(s)} |"]
    note = next((x for x in s.get("notes") or [] if x.startswith("no drift test")), None)
    if not s.get("drift") and note:
        need = _MIN_ROWS.search(note)
        before = int((s.get("reference") or {}).get("rows") or 0)
        lines += ["", f"Too little traffic for a drift test: {n:,} requests in this window and {before:,} in the one "
                      "before" + (f"; it needs at least {need.group(1)} in each." if need else ".")]
    return "\n".join(lines)

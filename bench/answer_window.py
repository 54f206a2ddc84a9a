"""Benchmark of what stating an answer's time window costs: the `query_metrics` tool with the extra facts its
answer sentence needs (labels, units, and the data's first and last day when the question names no period or
only one end) against the bare metric query, on the demo workspace.

Prints the median time of each and their ratio, for a question with a closed window (no span query) and one with
none (one span query). Works in a temporary demo workspace; it never touches a user's workspace.

    .venv/bin/python bench/answer_window.py [--runs 15] [--scale 0.1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.semantic.query import MetricQuery  # noqa: E402
from catalog.semantic.runner import run_metric_query  # noqa: E402
from catalog.workspace_setup import init_workspace  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from tools.query_metrics import QueryMetrics  # noqa: E402

Q3 = ["{{ TimeDimension('metric_time', 'day') }} >= CAST('2026-07-01' AS DATE)",
      "{{ TimeDimension('metric_time', 'day') }} < CAST('2026-10-01' AS DATE)"]


def _median_ms(fn, runs: int) -> float:
    fn()  # warm: the manifest parsed, DuckDB's files cached
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--scale", type=float, default=0.1)
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        init_workspace(ws, demo=True, scale=a.scale)
        tool = QueryMetrics(workspace=ws)
        for name, where in (("Q3 2026 (closed window)", Q3), ("no period (data's span)", [])):
            args = {"metrics": ["revenue"], "group_by": ["customer__region"], "where": where}
            bare = _median_ms(lambda: run_metric_query(ws, MetricQuery(**args)), a.runs)
            full = _median_ms(lambda: tool._run(**args), a.runs)
            print(f"{name}: bare query {bare:.1f} ms, tool with window facts {full:.1f} ms, ratio {full / bare:.2f}")


if __name__ == "__main__":
    main()

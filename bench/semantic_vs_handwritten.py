"""Benchmark of the semantic layer against hand-written SQL on the demo company's workspace: each metric query
runs as compiled by `run_metric_query`'s compiler and as the SQL a person would write, on one sandboxed
connection, alternating, the median of `--repeat` runs each. Both must give the same rows.

Prints each query's two times and their ratio, then the median ratio beside its target (at most 1.10).
Reads the workspace only; build one with `lathe init --demo --scale 100`.

    .venv/bin/python bench/semantic_vs_handwritten.py --workspace DIR [--repeat 5]
"""
from __future__ import annotations

import argparse
import datetime as dt
import decimal
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

from catalog.semantic.query import MetricQuery  # noqa: E402
from catalog.semantic.compiler import compile_query  # noqa: E402
from catalog.semantic.runner import _time_spine  # noqa: E402
from catalog.store import CatalogStore  # noqa: E402
from catalog.warehouse import connect_reader  # noqa: E402
from core.workspace import Workspace  # noqa: E402

TARGET = 1.10


@dataclass(frozen=True)
class Case:
    label: str
    query: MetricQuery
    handwritten: str


def q(metrics: list[str], group_by: list[str] = (), where: list[str] = ()) -> MetricQuery:
    return MetricQuery(metrics=list(metrics), group_by=list(group_by), where=list(where))


# The demo's metric definitions (catalog/semantic/demo.yml), written out by hand with the same meaning:
# a dimension is looked up with LEFT JOIN, so a fact row without its dimension row still counts (in a
# NULL group) as in MetricFlow (a join that only filters may be inner); rows are ordered as the compiled
# query orders them (by the group-by columns).
_DAILY = """
    daily AS (SELECT date_trunc('day', ordered_at) AS d, sum(amount) AS revenue FROM order_items GROUP BY 1),
    calendar AS (SELECT unnest(generate_series(min(d), max(d), INTERVAL 1 DAY)) AS d FROM daily)"""

CASES = [
    Case("grouped: revenue by region", q(["revenue"], ["customer__region"]), """
        SELECT c.region, sum(oi.amount)
        FROM order_items oi LEFT JOIN customers c ON c.customer_id = oi.customer_id
        GROUP BY 1 ORDER BY 1"""),
    Case("grouped: revenue, units by month and category",
         q(["revenue", "units_sold"], ["metric_time__month", "product__category"]), """
        SELECT date_trunc('month', oi.ordered_at), p.category, sum(oi.amount), sum(oi.quantity)
        FROM order_items oi LEFT JOIN products p ON p.product_id = oi.product_id
        GROUP BY 1, 2 ORDER BY 1, 2"""),
    Case("filtered metric: EMEA revenue by month", q(["emea_revenue"], ["metric_time__month"]), """
        SELECT date_trunc('month', oi.ordered_at), sum(oi.amount)
        FROM order_items oi LEFT JOIN customers c ON c.customer_id = oi.customer_id
        WHERE c.region = 'EMEA'
        GROUP BY 1 ORDER BY 1"""),
    Case("query filter: enterprise revenue by category",
         q(["revenue"], ["product__category"], ["{{ Dimension('customer__segment') }} = 'enterprise'"]), """
        SELECT p.category, sum(oi.amount)
        FROM order_items oi
        JOIN customers c ON c.customer_id = oi.customer_id
        LEFT JOIN products p ON p.product_id = oi.product_id
        WHERE c.segment = 'enterprise'
        GROUP BY 1 ORDER BY 1"""),
    Case("multi-hop: revenue by the order's customer segment", q(["revenue"], ["order__customer__segment"]), """
        SELECT c.segment, sum(oi.amount)
        FROM order_items oi
        LEFT JOIN orders o ON o.order_id = oi.order_id
        LEFT JOIN customers c ON c.customer_id = o.customer_id
        GROUP BY 1 ORDER BY 1"""),
    Case("ratio of two models: average order value by region", q(["average_order_value"], ["customer__region"]), """
        WITH r AS (SELECT c.region, sum(oi.amount) AS revenue
                   FROM order_items oi LEFT JOIN customers c ON c.customer_id = oi.customer_id GROUP BY 1),
             o AS (SELECT c.region, count(o.order_id) AS orders
                   FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id GROUP BY 1)
        SELECT r.region, r.revenue / o.orders FROM r JOIN o ON o.region = r.region ORDER BY 1"""),
    Case("ratio with a filter: return rate by channel", q(["return_rate"], ["order__channel"]), """
        SELECT channel, count(order_id) FILTER (WHERE status = 'returned') / count(order_id)
        FROM orders GROUP BY 1 ORDER BY 1"""),
    Case("support: tickets, resolution, CSAT by team",
         q(["ticket_volume", "resolution_time", "csat", "resolution_rate"], ["agent__team"]), """
        SELECT a.team, count(t.ticket_id), avg(t.resolution_hours), avg(t.csat),
               count(*) FILTER (WHERE t.status <> 'open') / count(t.ticket_id)
        FROM support_tickets t LEFT JOIN support_agents a ON a.agent_id = t.agent_id
        GROUP BY 1 ORDER BY 1"""),
    Case("percentile: median resolution hours by priority", q(["median_resolution_time"], ["ticket__priority"]), """
        SELECT priority, quantile_cont(resolution_hours, 0.5) FROM support_tickets GROUP BY 1 ORDER BY 1"""),
    Case("cumulative window: revenue, last 30 days, by day", q(["revenue_last_30_days"], ["metric_time__day"]), f"""
        WITH {_DAILY},
        rolled AS (
            SELECT calendar.d,
                   sum(daily.revenue) OVER w AS revenue, count(daily.revenue) OVER w AS days_with_sales
            FROM calendar LEFT JOIN daily ON daily.d = calendar.d
            WINDOW w AS (ORDER BY calendar.d ROWS BETWEEN 29 PRECEDING AND CURRENT ROW))
        SELECT d, revenue FROM rolled WHERE days_with_sales > 0 ORDER BY 1"""),
    Case("grain to date: revenue month to date, by day", q(["revenue_mtd"], ["metric_time__day"]), f"""
        WITH {_DAILY},
        rolled AS (
            SELECT calendar.d,
                   sum(daily.revenue) OVER w AS revenue, count(daily.revenue) OVER w AS days_with_sales
            FROM calendar LEFT JOIN daily ON daily.d = calendar.d
            WINDOW w AS (PARTITION BY date_trunc('month', calendar.d) ORDER BY calendar.d))
        SELECT d, revenue FROM rolled WHERE days_with_sales > 0 ORDER BY 1"""),
    Case("cumulative by month: revenue to date at each month's first day",
         q(["cumulative_revenue"], ["metric_time__month"]), f"""
        WITH {_DAILY},
        running AS (
            SELECT calendar.d, sum(daily.revenue) OVER (ORDER BY calendar.d) AS revenue
            FROM calendar LEFT JOIN daily ON daily.d = calendar.d)
        SELECT date_trunc('month', d), arg_min(revenue, d) FROM running GROUP BY 1 ORDER BY 1"""),
    Case("derived with offset: revenue growth month over month", q(["revenue_growth_mom"], ["metric_time__month"]), """
        WITH m AS (SELECT date_trunc('month', ordered_at) AS m, sum(amount) AS revenue FROM order_items GROUP BY 1)
        SELECT m, (revenue - lag(revenue) OVER (ORDER BY m)) / lag(revenue) OVER (ORDER BY m)
        FROM m ORDER BY 1"""),
]


def _value(v: Any) -> Any:
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return dt.datetime(v.year, v.month, v.day)
    return v


def same_rows(a: list[tuple], b: list[tuple]) -> str | None:
    """None when equal (numbers to 1e-9 relative), else what differs first."""
    if len(a) != len(b):
        return f"{len(a)} rows against {len(b)}"
    for i, (ra, rb) in enumerate(zip(a, b)):
        if len(ra) != len(rb):
            return f"row {i}: {len(ra)} columns against {len(rb)}"
        for x, y in zip(map(_value, ra), map(_value, rb)):
            if isinstance(x, float) and isinstance(y, (int, float)):
                if not math.isclose(x, float(y), rel_tol=1e-9, abs_tol=1e-9):
                    return f"row {i}: {ra} against {rb}"
            elif x != y:
                return f"row {i}: {ra} against {rb}"
    return None


def timed(con, sql: str) -> tuple[float, list[tuple]]:
    t = time.perf_counter()
    rows = con.execute(sql).fetchall()
    return time.perf_counter() - t, rows


def run(ws: Workspace, repeat: int) -> int:
    compiled = []
    with connect_reader(ws) as con:
        spine = _time_spine(con)
    for case in CASES:
        # What a semantic query adds before DuckDB runs, in a running process (the first call also pays
        # for imports and for parsing the MetricFlow files, which are then cached while unchanged).
        compile_query(CatalogStore(ws).load_semantic(), case.query, spine)
        t = time.perf_counter()
        sql = compile_query(CatalogStore(ws).load_semantic(), case.query, spine).sql
        compiled.append((case, sql, time.perf_counter() - t))
    print(f"{'query':<58} {'semantic ms':>11} {'hand ms':>9} {'ratio':>6}  compile ms")
    ratios, with_compile, failures = [], [], 0
    with connect_reader(ws) as con:
        for case, sql, compile_s in compiled:
            _, sem_rows = timed(con, sql)  # warm both once; keep their rows to compare
            _, hand_rows = timed(con, case.handwritten)
            sem_t, hand_t = [], []
            for i in range(repeat):  # alternate which goes first, so neither always meets a warmer cache
                pair = [(sql, sem_t), (case.handwritten, hand_t)]
                for text, bucket in (pair if i % 2 == 0 else pair[::-1]):
                    bucket.append(timed(con, text)[0])
            sem, hand = statistics.median(sem_t), statistics.median(hand_t)
            ratio = sem / hand if hand > 0 else float("inf")
            ratios.append(ratio)
            with_compile.append((sem + compile_s) / hand if hand > 0 else float("inf"))
            diff = same_rows(sem_rows, hand_rows)
            note = "" if diff is None else f"  ROWS DIFFER: {diff}"
            failures += diff is not None
            print(f"{case.label[:58]:<58} {sem * 1000:>11.1f} {hand * 1000:>9.1f} {ratio:>6.2f}  "
                  f"{compile_s * 1000:>6.1f}{note}")
    med = statistics.median(ratios)
    verdict = "meets target" if med <= TARGET else "MISSES target"
    print(f"\nmedian ratio semantic/hand-written over {len(ratios)} queries: {med:.3f} "
          f"(target <= {TARGET:.2f}: {verdict}); {repeat} runs each, median")
    print(f"median ratio with the compile time added to the semantic side: {statistics.median(with_compile):.3f}")
    if failures:
        print(f"{failures} queries gave different rows from their hand-written SQL")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", required=True, help="a demo workspace (lathe init --demo --scale N)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each query (default 5)")
    args = ap.parse_args(argv)
    ws = Workspace.resolve(args.workspace).require()
    return run(ws, max(1, args.repeat))


if __name__ == "__main__":
    sys.exit(main())

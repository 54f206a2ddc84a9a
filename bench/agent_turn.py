"""Benchmark of the agent's own cost per turn: a one-step read plan written by an instant scripted LLM (the
real LiteLLM → LangChain → LangGraph path against a local OpenAI-compatible server), in one thread.

Prints p50 / p95 of the whole turn and of its parts measured side by side: the planner's LLM call, the tool
(the query), and the rest, which is the agent's overhead (route, context retrieval, validation, review,
checkpoints, answer); the offline planner's and typed SQL's whole turns are printed beside it. Works in a
temporary demo workspace; it never touches a user's workspace.

    .venv/bin/python bench/agent_turn.py [--turns 60] [--scale 0.1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()
os.environ.setdefault("LITELLM_LOG", "ERROR")

from core.workspace import Workspace  # noqa: E402
from catalog.workspace_setup import init_workspace  # noqa: E402
from tests.scripted_llm import Reply, ScriptedLLM, call  # noqa: E402

TARGET_P50_MS, TARGET_P95_MS = 150.0, 400.0
WARMUP = 3
READ_SQL = "SELECT region, count(*) AS customers FROM customers GROUP BY region ORDER BY region"
QUESTION = "how many customers are there in each region?"


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


class Timings:
    """Per-turn times in milliseconds, kept by part."""

    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {}

    def add(self, part: str, ms: float) -> None:
        self.parts.setdefault(part, []).append(ms)

    def line(self, part: str, label: str | None = None) -> str:
        v = self.parts[part]
        return f"  {label or part:<34} p50 {percentile(v, 50):7.1f} ms   p95 {percentile(v, 95):7.1f} ms   (n={len(v)})"


def timed_turn(session: Any, text: str, timings: Timings | None, planner_ms: list[float]) -> None:
    """One turn; records whole, planner (LLM), tool and overhead times when `timings` is given."""
    tool_ms = 0.0
    started_step = 0.0
    t0 = time.perf_counter()
    status = ""
    for e in session.send(text):
        if e.type == "step_started":
            started_step = time.perf_counter()
        elif e.type == "step_finished":
            tool_ms += (time.perf_counter() - started_step) * 1000
            if not e.ok:
                raise SystemExit(f"the step failed: {e.error}")
        elif e.type == "done":
            status = e.status
    total = (time.perf_counter() - t0) * 1000
    if status != "answered" or started_step == 0.0:
        raise SystemExit(f"the turn ended `{status}` {'with' if started_step else 'without'} a step: "
                         "each measured turn must run one read step")
    if timings is not None:
        llm = planner_ms[-1] if planner_ms else 0.0
        timings.add("whole turn", total)
        timings.add("planner (LLM call)", llm)
        timings.add("tool (the query)", tool_ms)
        timings.add("agent overhead (the rest)", total - llm - tool_ms)


def time_planner(session: Any, into: list[float]) -> None:
    """Wraps the session's planner to time each call (for the LLM planner: the model round trip)."""
    planner = session.resources.planner
    plan: Callable[..., Any] = planner.plan

    def timed(request: Any, emit: Any) -> Any:
        t = time.perf_counter()
        try:
            return plan(request, emit)
        finally:
            into.append((time.perf_counter() - t) * 1000)

    planner.plan = timed


def run_turns(ws: Workspace, text: str, turns: int, thread: str) -> Timings:
    from agent.session import Session

    timings = Timings()
    planner_ms: list[float] = []
    with Session(ws, thread) as session:
        time_planner(session, planner_ms)
        for i in range(WARMUP + turns):
            timed_turn(session, text, timings if i >= WARMUP else None, planner_ms)
    return timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=60, help="measured turns per case (after 3 warm-up turns)")
    ap.add_argument("--scale", type=float, default=0.1, help="demo company size")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        init_workspace(ws, demo=True, scale=args.scale)
        print(f"Agent turn, one-step read plan, {args.turns} turns per case after {WARMUP} warm-up "
              f"(demo scale {args.scale:g}, {os.cpu_count()} CPUs)")

        def reply(_body: dict[str, Any]) -> Reply:
            return call("run_sql", say="Counting customers per region.", sql=READ_SQL)

        with ScriptedLLM([reply] * (WARMUP + args.turns)) as llm:
            os.environ["LATHE_MODEL"], os.environ["LATHE_API_BASE"] = "openai/scripted", llm.url
            try:
                with_llm = run_turns(ws, QUESTION, args.turns, "bench-llm")
            finally:
                del os.environ["LATHE_MODEL"], os.environ["LATHE_API_BASE"]
            assert len(llm.requests) == WARMUP + args.turns
        print("\nLLM planner (scripted, instant server):")
        for part in ("whole turn", "planner (LLM call)", "tool (the query)", "agent overhead (the rest)"):
            print(with_llm.line(part))

        offline = run_turns(ws, "revenue by region", args.turns, "bench-offline")
        typed = run_turns(ws, READ_SQL, args.turns, "bench-sql")
        print("\nFor comparison, without an LLM:")
        print(offline.line("whole turn", "offline planner, whole turn"))
        print(offline.line("tool (the query)", "offline planner, its query"))
        print(typed.line("whole turn", "SQL typed directly, whole turn"))

        over = with_llm.parts["agent overhead (the rest)"]
        p50, p95 = percentile(over, 50), percentile(over, 95)
        print(f"\nAgent overhead p50 {p50:.1f} ms (target ≤ {TARGET_P50_MS:g}): "
              f"{'meets target' if p50 <= TARGET_P50_MS else 'MISSES target'}; "
              f"p95 {p95:.1f} ms (target ≤ {TARGET_P95_MS:g}): "
              f"{'meets target' if p95 <= TARGET_P95_MS else 'MISSES target'}")


if __name__ == "__main__":
    main()

"""10,000 async requests; the worker pool is SIGKILLed half-way (all its processes at once,
wherever they are) and started again; then every request must have exactly one result: 0 lost, 0 answered twice,
counted per request id in the queue database, and each captured once as traffic.

Run: .venv/bin/python bench/async_kill_restart.py [--requests 10000] [--workers 2] [--kill-at 0.5]
Real processes, a real workspace in a temporary folder, a tiny random-weight Qwen3 model answering 1 token each.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

from core.workspace import Workspace  # noqa: E402
from runtimes.monitoring.traffic import spool_path  # noqa: E402
from runtimes.serving.queue.store import AsyncQueue, submit_many  # noqa: E402
from runtimes.training.tiny_models import build_tiny_model  # noqa: E402

TEXTS = [f"Order {i} ships on day {i % 7}. Ticket {i} is about a refund of {i * 3} euros." for i in range(80)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of requests done when the pool is killed")
    parser.add_argument("--max-tokens", type=int, default=1)
    parser.add_argument("--claim", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lathe-async-bench-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.create()
        build_tiny_model("qwen3", ws.root / "models" / "base" / "tiny", TEXTS, hidden=32, layers=1, heads=2,
                         kv_heads=1, vocab_size=300)
        n = args.requests
        started = time.perf_counter()
        ids = submit_many(ws, "tiny", [{"prompt": f"Where is order {i}?", "max_tokens": args.max_tokens,
                                        "temperature": 0} for i in range(n)])
        submit_s = time.perf_counter() - started
        queue = AsyncQueue(ws).path
        cmd = [sys.executable, "-m", "runtimes.serving.queue.worker", str(ws.root), "--model", "tiny",
               "--workers", str(args.workers), "--claim", str(args.claim)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        t0 = time.perf_counter()
        pool = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        first_answer = None
        while (done := _count(queue, "SELECT count(*) FROM results")) < n * args.kill_at:
            if done and first_answer is None:
                first_answer = time.perf_counter() - t0
            time.sleep(0.05)
        os.killpg(pool.pid, signal.SIGKILL)  # every process of the pool, mid-whatever it was doing
        pool.wait()
        kill_s = time.perf_counter() - t0
        at_kill = _count(queue, "SELECT count(*) FROM results")
        in_flight = _count(queue, "SELECT count(*) FROM requests WHERE status = 'running'")

        t1 = time.perf_counter()
        again = subprocess.run([*cmd, "--exit-when-idle"], cwd=ROOT, env=env, capture_output=True, text=True)
        restart_s = time.perf_counter() - t1
        if again.returncode != 0:
            print(again.stderr[-3000:], file=sys.stderr)
            return 1

        with sqlite3.connect(queue) as db:
            per_id = dict(db.execute("SELECT request_id, count(*) FROM results GROUP BY 1").fetchall())
            statuses = dict(db.execute("SELECT status, count(*) FROM requests GROUP BY 1").fetchall())
            redone = db.execute("SELECT count(*) FROM requests WHERE attempts > 1").fetchone()[0]
            counted = db.execute("SELECT sum(completed) FROM workers").fetchone()[0]
        with sqlite3.connect(spool_path(ws)) as db:
            traffic = db.execute("SELECT count(*), count(DISTINCT request_id) FROM traffic WHERE route = 'async'"
                                 ).fetchone()
        results = sum(per_id.values())
        lost = sum(1 for i in ids if i not in per_id)
        twice = sum(1 for c in per_id.values() if c > 1)
        figures = {
            "requests": n, "results": results, "lost": lost, "answered_twice": twice,
            "done": statuses.get("done", 0), "other_statuses": {k: v for k, v in statuses.items() if k != "done"},
            "worker_counted_completions": counted, "traffic_records": traffic[0], "traffic_distinct": traffic[1],
            "done_at_kill": at_kill, "running_at_kill": in_flight, "claimed_more_than_once": redone,
            "workers": args.workers, "max_tokens": args.max_tokens,
            "submit_s": round(submit_s, 2), "first_answer_s": round(first_answer or 0.0, 1),
            "until_kill_s": round(kill_s, 1), "restart_to_all_done_s": round(restart_s, 1),
            "total_s": round(time.perf_counter() - started, 1)}
        print(json.dumps(figures, indent=2))
        ok = (results == n and lost == 0 and twice == 0 and statuses == {"done": n} and counted == n
              and traffic == (n, n))
        print(f"{'PASS' if ok else 'FAIL'}: {n:,} requests, {results:,} results, {lost} lost, {twice} answered "
              f"twice; killed at {at_kill:,} done ({in_flight} in flight), {redone} claimed again after the kill; "
              f"{figures['total_s']} s in all")
        return 0 if ok else 1


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path, timeout=60) as db:
        return db.execute(sql).fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())

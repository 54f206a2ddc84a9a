"""What one call of a SQLite-backed store costs through `core.state_db`: an async request's status (a read of the
queue, whose schema has triggers) and one traffic record spooled (a write), in microseconds per call, beside a
connection opened for each call (what the stores did before they kept one per thread).

Run: .venv/bin/python bench/state_db_calls.py [--calls 1000]
A real workspace in a temporary folder; nothing but SQLite.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.workspace import Workspace  # noqa: E402
from runtimes.monitoring.traffic import TrafficRecord, record  # noqa: E402
from runtimes.serving.queue.store import AsyncQueue, AsyncRequest  # noqa: E402


def per_call_us(fn, calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    n = parser.parse_args().calls
    ws = Workspace(Path(tempfile.mkdtemp()) / "ws")
    ws.create()
    queue = AsyncQueue(ws)
    ids = queue.submit_many("async", "tiny", [(AsyncRequest(prompt=f"q{i}", max_tokens=2), None) for i in range(100)])

    def fresh_status(i: int) -> None:  # a connection of its own for each call
        db = sqlite3.connect(queue.path, isolation_level=None)
        db.execute("SELECT * FROM requests WHERE id = ?", (ids[i % len(ids)],)).fetchone()
        db.close()

    def one_record(i: int) -> None:
        record(ws, [TrafficRecord(request_id=f"r{i}", endpoint="e", model="m", ts=dt.datetime.now(dt.timezone.utc),
                                  route="chat", prompt="p", response="r", prompt_tokens=1, completion_tokens=1,
                                  latency_ms=1.0)])

    kept = per_call_us(lambda i: queue.status(ids[i % len(ids)]), n)
    fresh = per_call_us(fresh_status, n)
    spooled = per_call_us(one_record, n)
    print(f"async status(): {kept:.0f} us per call; a new connection per call: {fresh:.0f} us "
          f"({fresh / kept:.1f}x)")
    print(f"traffic record (1 row, one transaction): {spooled:.0f} us per call")


if __name__ == "__main__":
    main()

"""One replica's load, seen from outside it: an ASGI middleware counts the generation requests in flight and their
latencies, refuses those beyond the replica's concurrency limit with 429 and Retry-After, and a thread writes the
figures to `runs/endpoints/NAME/replicas/PID.json`, where the supervisor and the status call read them.

A file per replica keeps the replicas independent: none waits on another or on the supervisor.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

WINDOW_S = 60.0  # latencies older than this no longer count toward p95
WRITE_EVERY_S = 0.25
RETRY_AFTER_S = 1


class ReplicaLoad:
    """The counters of this replica (thread-safe: requests finish on the event loop, the writer reads them)."""

    def __init__(self, max_concurrency: int | None = None) -> None:
        self.max_concurrency = max_concurrency
        self.in_flight = 0
        self.served = 0
        self.refused = 0
        self._latencies: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
                self.refused += 1
                return False
            self.in_flight += 1
            return True

    def leave(self, latency_ms: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.in_flight -= 1
            self.served += 1
            self._latencies.append((now, latency_ms))

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            while self._latencies and now - self._latencies[0][0] > WINDOW_S:
                self._latencies.popleft()
            recent = sorted(ms for _, ms in self._latencies)
            return {"in_flight": self.in_flight, "served": self.served, "refused": self.refused,
                    "p95_ms": round(recent[max(0, math.ceil(0.95 * len(recent)) - 1)], 1) if recent else None,
                    "max_concurrency": self.max_concurrency}


class LoadGate:
    """ASGI middleware over the generation routes (`/v1/…completions`): counts them, or refuses one beyond the
    limit with 429, as a managed serverless endpoint throttles past its maximum concurrency."""

    def __init__(self, app: Any, load: ReplicaLoad) -> None:
        self.app, self.load = app, load

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if not (scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith("/v1/")
                and scope["path"].endswith("completions")):
            await self.app(scope, receive, send)
            return
        if not self.load.enter():
            from fastapi.responses import JSONResponse

            body = {"error": {"message": f"This endpoint is at its maximum concurrency ({self.load.max_concurrency} "
                                         f"requests at once per replica): retry after {RETRY_AFTER_S} s.",
                              "type": "rate_limit_exceeded", "param": None, "code": "rate_limit_exceeded"}}
            await JSONResponse(body, status_code=429, headers={"retry-after": str(RETRY_AFTER_S)})(
                scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.load.leave((time.perf_counter() - started) * 1000)


def replicas_dir(endpoint_dir: Path) -> Path:
    return endpoint_dir / "replicas"


def start_writer(folder: Path, load: ReplicaLoad, extra: Callable[[], dict[str, Any]]) -> None:
    """Write this replica's figures (and `extra()`) to `folder/PID.json` every quarter second, in a daemon thread."""
    folder.mkdir(parents=True, exist_ok=True)
    path, tmp = folder / f"{os.getpid()}.json", folder / f".{os.getpid()}.json.tmp"

    def write() -> None:
        while True:
            try:
                tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), **load.snapshot(), **extra()}))
                os.replace(tmp, path)  # readers never see half a file
            except OSError:  # the folder went with a deleted endpoint; this process is about to stop
                pass
            time.sleep(WRITE_EVERY_S)

    threading.Thread(target=write, name="replica-load", daemon=True).start()


def read_all(folder: Path, pids: set[int] | None = None) -> list[dict[str, Any]]:
    """The figures each replica wrote last (only `pids` when given), oldest process first."""
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if pids is None or row.get("pid") in pids:
            found.append(row)
    return sorted(found, key=lambda r: r.get("started_at", 0))

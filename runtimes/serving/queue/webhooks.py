"""Webhook delivery for async requests: POST the finished request (its result or error) to the URL given at
submit, retried with exponential backoff, every try recorded in the queue's `deliveries` table.

Delivery is at least once: a worker killed between a receiver's 2xx and the record of it posts again, so each POST
carries the request id as `Idempotency-Key` for the receiver to drop a repeat. It never changes a result.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from runtimes.serving.queue.store import AsyncQueue

MAX_TRIES = 10
TIMEOUT_S = 10.0


def deliver_due(queue: AsyncQueue, *, limit: int = 16, backoff_s: float = 1.0, timeout_s: float = TIMEOUT_S) -> int:
    """Post the webhooks that are due; returns how many were delivered."""
    delivered = 0
    for row in queue.claim_deliveries(limit, hold_s=timeout_s + 5):
        attempt = int(row["attempts"]) + 1
        body = json.dumps(queue.notification(row["request_id"])).encode()
        code, error = _post(row["url"], body, row["request_id"], timeout_s)
        ok = code is not None and 200 <= code < 300
        later = None if ok or attempt >= MAX_TRIES else time.time() + backoff(attempt, backoff_s)
        queue.record_delivery(row["request_id"], attempt, code, error, later)
        delivered += ok
    return delivered


def backoff(attempt: int, base_s: float = 1.0) -> float:
    """Seconds before try `attempt + 1`: base, 2×base, 4×base, … at most five minutes."""
    return min(base_s * 2 ** (attempt - 1), 300.0)


def _post(url: str, body: bytes, request_id: str, timeout_s: float) -> tuple[int | None, str | None]:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "lathe-async", "Idempotency-Key": request_id,
        "X-Lathe-Request-Id": request_id})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, None
    except urllib.error.HTTPError as e:
        return e.code, f"HTTP {e.code} {e.reason}"
    except (urllib.error.URLError, OSError) as e:  # refused, unreachable, timed out
        return None, str(getattr(e, "reason", e))

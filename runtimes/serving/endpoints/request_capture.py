"""Data capture for one endpoint: a sampled share of its requests (prompt, reply, tokens, latency, status) handed
to monitoring's traffic spool.

Capture must never fail a request: a spool that cannot be written is logged and the answer still goes out.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
from typing import Any

from core.workspace import Workspace

log = logging.getLogger("lathe.endpoint")


class RequestCapture:
    def __init__(self, ws: Workspace | None, endpoint: str, rate: float = 1.0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"capture rate {rate} is not between 0 and 1")
        self.ws, self.endpoint, self.rate = ws, endpoint, rate

    def sampled(self) -> bool:
        return self.ws is not None and (self.rate >= 1.0 or random.random() < self.rate)

    def record(self, *, request_id: str, model: str, arrived: dt.datetime, route: str, prompt: str, response: str,
               prompt_tokens: int, completion_tokens: int, latency_ms: float, status: int = 200,
               group: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        """Spool one request the caller has sampled (`sampled()`)."""
        if self.ws is None:
            return
        from runtimes.monitoring.traffic import TrafficRecord, record

        try:
            record(self.ws, [TrafficRecord(  # type: ignore[arg-type]
                request_id=request_id, endpoint=self.endpoint, model=model, ts=arrived, route=route,  # type: ignore[arg-type]
                prompt=prompt, response=response, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                latency_ms=max(0.0, latency_ms), status=status, group=group, metadata=metadata or {})])
        except Exception:  # a full disk or a locked spool loses one record, never the answer
            log.exception("could not capture request %s of endpoint %s", request_id, self.endpoint)

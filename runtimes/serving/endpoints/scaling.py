"""How many replicas an endpoint runs and how many requests each takes: the settings a deploy stores, and the
rule the supervisor applies to what the replicas report (requests in flight, p95 latency).

Pure decisions, no processes: the supervisor (`supervisor.py`) acts on them and records each as an event.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_REPLICAS = 16


class Scaling(BaseModel):
    """An endpoint's replica range and admission limit (stored with the endpoint)."""
    model_config = ConfigDict(extra="forbid")

    min_replicas: int = Field(1, ge=1, le=MAX_REPLICAS, description="replica processes always running")
    max_replicas: int | None = Field(None, ge=1, le=MAX_REPLICAS, description="the most replicas under load; "
                                     "default: min_replicas (no scaling)")
    scale_up_queue: float = Field(2.0, gt=0, description="requests in flight per ready replica above which "
                                  "one more replica starts")
    target_p95_ms: float | None = Field(None, gt=0, description="p95 latency over the last minute above which one "
                                        "more replica starts; default: latency does not scale")
    scale_down_idle_s: float = Field(60.0, gt=0, description="seconds with no request in flight after which one "
                                     "replica above min_replicas stops")
    max_concurrency: int | None = Field(None, ge=1, le=4096, description="requests one replica serves at once; "
                                        "more get 429 with Retry-After (as managed serverless platforms answer); "
                                        "default: no limit")

    @model_validator(mode="after")
    def _range(self) -> Scaling:
        if self.max_replicas is None:
            self.max_replicas = self.min_replicas
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})")
        return self

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> Scaling:
        return cls.model_validate(stored or {})


@dataclass(frozen=True)
class Load:
    """What the ready replicas report together."""
    in_flight: int
    p95_ms: float | None


@dataclass(frozen=True)
class Decision:
    change: int  # +1, -1 or 0
    reason: str


def decide(s: Scaling, *, replicas: int, starting: int, load: Load, idle_for_s: float) -> Decision:
    """One step toward the replica count the load asks for: never above max or below min, one replica at a time,
    and no scale-up while a replica is still starting (its capacity is on the way)."""
    assert s.max_replicas is not None
    ready = replicas - starting
    if replicas < s.min_replicas:
        return Decision(+1, f"below the minimum of {s.min_replicas}")
    if replicas < s.max_replicas and starting == 0 and ready > 0:
        if load.in_flight > s.scale_up_queue * ready:
            return Decision(+1, f"{load.in_flight} requests in flight on {ready} replica(s) "
                                f"(more than {s.scale_up_queue:g} each)")
        if s.target_p95_ms is not None and load.p95_ms is not None and load.p95_ms > s.target_p95_ms:
            return Decision(+1, f"p95 latency {load.p95_ms:.0f} ms above the target {s.target_p95_ms:.0f} ms")
    if replicas > s.min_replicas and starting == 0 and load.in_flight == 0 and idle_for_s >= s.scale_down_idle_s:
        return Decision(-1, f"no request for {idle_for_s:.0f} s")
    return Decision(0, "")

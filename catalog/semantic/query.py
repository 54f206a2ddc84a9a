"""What a metric question is (`MetricQuery`) and what the compiler makes of it (`CompiledQuery`).

Plain data with validation; building SQL is the compiler's work and running it the runner's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlglot import exp


class MetricQuery(BaseModel):
    """Metrics by dimensions, as MetricFlow asks: `order_by` names a metric or group-by, `-name` for descending."""
    model_config = ConfigDict(extra="forbid")

    metrics: list[str] = Field(min_length=1, description="metric names, e.g. ['revenue']")
    group_by: list[str] = Field(default_factory=list,
                                description="dimensions, e.g. ['customer__region', 'metric_time__month']")
    where: list[str] = Field(default_factory=list,
                             description="MetricFlow filters, e.g. \"{{ Dimension('customer__region') }} = 'EMEA'\"")
    order_by: list[str] = Field(default_factory=list, description="metric or dimension names; a leading - sorts "
                                "descending")
    limit: int | None = Field(None, ge=0, description="return at most this many rows")

    @field_validator("metrics", "group_by", "order_by")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        out = [s.strip() for s in v]
        if any(not s for s in out):
            raise ValueError("names must not be empty")
        return out

    @field_validator("where")
    @classmethod
    def _filters(cls, v: list[str]) -> list[str]:
        return [s for s in (x.strip() for x in v) if s]


@dataclass(frozen=True)
class CompiledQuery:
    tree: exp.Query
    columns: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def sql(self) -> str:
        return self.tree.sql(dialect="duckdb", pretty=True)

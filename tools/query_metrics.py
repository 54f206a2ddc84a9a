"""Tool: ask the semantic layer for metrics grouped by dimensions (MetricFlow names).

The SQL is compiled by the semantic layer, never written here; it only reads.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from tools.base import LatheTool, ToolArgs, ToolOutput, principal_or_local, table_text
from tools.risk import Risk


class QueryMetricsArgs(ToolArgs):
    metrics: list[str] = Field(..., min_length=1, description="metric names, e.g. ['revenue']")
    group_by: list[str] = Field(default_factory=list,
                                description="dimensions, e.g. ['customer__region', 'metric_time__month']")
    where: list[str] = Field(default_factory=list,
                             description="MetricFlow filters, e.g. \"{{ Dimension('customer__region') }} = 'EMEA'\"")
    order_by: list[str] = Field(default_factory=list, description="metric or dimension names; a leading - sorts descending")
    limit: int | None = Field(None, ge=1, description="return at most this many rows")


class QueryMetrics(LatheTool):
    name: str = "query_metrics"
    description: str = ("Query defined business metrics through the semantic layer, grouped by dimensions, with "
                        "filters, ordering and a limit. Use it whenever a metric in the context answers the question.")
    args_schema: type[BaseModel] = QueryMetricsArgs
    risk = Risk.read

    def estimate(self, args: BaseModel) -> str:
        return f"reads the warehouse for {len(getattr(args, 'metrics', []))} metric(s)"

    def _run(self, metrics: list[str], group_by: list[str] | None = None, where: list[str] | None = None,
             order_by: list[str] | None = None, limit: int | None = None) -> ToolOutput:
        from catalog.semantic.query import MetricQuery
        from catalog.semantic.runner import run_metric_query

        query = MetricQuery(metrics=metrics, group_by=group_by or [], where=where or [], order_by=order_by or [],
                            limit=limit)
        result = run_metric_query(self.workspace, query, principal_or_local(self.principal))
        return ToolOutput(text=table_text(result), result=result)

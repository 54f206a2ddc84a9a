"""Tool: ask the semantic layer for metrics grouped by dimensions (MetricFlow names).

The SQL is compiled by the semantic layer, never written here; it only reads.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from catalog.semantic.query import MetricQuery
from tools.base import LatheTool, ToolArgs, ToolOutput, principal_or_local, table_text
from tools.risk import Risk


class QueryMetricsArgs(MetricQuery, ToolArgs):
    """A metric query, field for field."""


class QueryMetrics(LatheTool):
    name: str = "query_metrics"
    description: str = ("Query defined business metrics through the semantic layer, grouped by dimensions, with "
                        "filters, ordering and a limit. Use it whenever a metric in the context answers the question.")
    args_schema: type[BaseModel] = QueryMetricsArgs
    risk = Risk.read

    def estimate(self, args: BaseModel) -> str:
        return f"reads the warehouse for {len(getattr(args, 'metrics', []))} metric(s)"

    def _run(self, **args: object) -> ToolOutput:
        from catalog.semantic.runner import run_metric_query

        query = MetricQuery.model_validate(args)
        result = run_metric_query(self.workspace, query, principal_or_local(self.principal))
        return ToolOutput(text=table_text(result), result=result, data=self._about(query, result.sql))

    def _about(self, query: MetricQuery, sql: str) -> dict[str, Any]:
        """What the answer's sentence says besides the rows: labels and units from the semantic layer, and the first
        and last day of data the filters keep (the window of a question that names no period, or only one end)."""
        from catalog.date_filters import filter_window
        from catalog.semantic.runner import data_span
        from catalog.store import CatalogStore

        manifest = CatalogStore(self.workspace).load_semantic()
        metrics = [m for m in (manifest.metric(n) for n in query.metrics) if m is not None]
        labels = {m.name: m.label for m in metrics if m.label}
        wanted = {g.rsplit("__", 1)[-1] for g in query.group_by}
        for model in manifest.semantic_models:
            labels.update({d.name: d.label for d in model.dimensions if d.label and d.name in wanted})
        return {"labels": labels, "units": {m.name: m.unit for m in metrics if m.unit},
                "span": None if None not in filter_window(sql) else data_span(self.workspace, query)}

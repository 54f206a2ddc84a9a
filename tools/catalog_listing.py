"""Tools: list the catalog's tables and its metrics, one row each with what they are.

They read the catalog files only, never the warehouse rows.
"""
from __future__ import annotations

from pydantic import BaseModel

from catalog.results import QueryResult
from tools.base import LatheTool, ToolArgs, ToolOutput
from tools.risk import Risk


class NoArgs(ToolArgs):
    pass


class ListTables(LatheTool):
    name: str = "list_tables"
    description: str = "List the tables in the catalog with their descriptions, row counts and owners."
    args_schema: type[BaseModel] = NoArgs
    risk = Risk.read

    def _run(self) -> ToolOutput:
        from catalog.store import CatalogStore

        cat = CatalogStore(self.workspace).load()
        rows = [[t.name, t.description, t.row_count, len(t.columns), t.owner] for t in cat.tables.values()]
        result = QueryResult(sql="", columns=["table", "description", "rows", "columns", "owner"], rows=rows)
        names = ", ".join(f"`{r[0]}`" for r in rows) or "none"
        return ToolOutput(text=f"{len(rows)} tables: {names}", result=result)


class ListMetrics(LatheTool):
    name: str = "list_metrics"
    description: str = "List the business metrics defined in the semantic layer with their types and descriptions."
    args_schema: type[BaseModel] = NoArgs
    risk = Risk.read

    def _run(self) -> ToolOutput:
        from catalog.store import CatalogStore

        sem = CatalogStore(self.workspace).load_semantic()
        rows = [[m.name, m.type.value, m.label or "", m.description or ""] for m in sem.metrics]
        result = QueryResult(sql="", columns=["metric", "type", "label", "description"], rows=rows)
        names = ", ".join(f"`{r[0]}`" for r in rows) or "none"
        return ToolOutput(text=f"{len(rows)} metrics: {names}", result=result)

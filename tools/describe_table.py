"""Tool: describe one catalogued table: its description, owner, size and columns with types and PII tags.

It reads the catalog only; sample values of PII columns are never shown.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from core.errors import UserError
from catalog.results import QueryResult
from catalog.suggestions import unknown
from tools.base import LatheTool, ToolArgs, ToolOutput
from tools.risk import Risk


class DescribeTableArgs(ToolArgs):
    table: str = Field(..., min_length=1, description="the table's name")


class DescribeTable(LatheTool):
    name: str = "describe_table"
    description: str = "Describe a table: its description, owner, row count and columns (type, description, PII tag)."
    args_schema: type[BaseModel] = DescribeTableArgs
    risk = Risk.read

    def _run(self, table: str) -> ToolOutput:
        from catalog.store import CatalogStore

        store = CatalogStore(self.workspace)
        t = store.load_table(table)
        if t is None:
            known = store.load().tables
            t = next((v for k, v in known.items() if k.lower() == table.lower()), None)
            if t is None:
                raise UserError(unknown("table", table, known))
        rows = [[c.name, c.type, c.description, c.pii.value if c.pii else None,
                 ", ".join(c.synonyms), [] if c.pii else c.sample_values[:5]] for c in t.columns]
        result = QueryResult(sql="", columns=["column", "type", "description", "pii", "synonyms", "samples"], rows=rows)
        parts = [f"table `{t.name}`" + (f": {t.description}" if t.description else "")]
        if t.owner:
            parts.append(f"owner: {t.owner}")
        if t.row_count is not None:
            parts.append(f"{t.row_count:,} rows")
        if t.pii_columns:
            parts.append("PII: " + ", ".join(f"{c.name} ({c.pii.value})" for c in t.pii_columns))
        parts.append("columns: " + ", ".join(f"{c.name} {c.type}".strip() for c in t.columns))
        return ToolOutput(text="; ".join(parts), result=result)

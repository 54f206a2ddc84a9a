"""Tool: create (or replace) a table in the warehouse from a SELECT, catalogued with its column lineage.

The one write the agent can do today; its risk is `write`, so it runs only after approval.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from tools.base import LatheTool, ToolArgs, ToolOutput, principal_or_local
from tools.risk import Risk


class CreateDerivedTableArgs(ToolArgs):
    name: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=63,
                      description="the new table's name: letters, digits and underscores")
    select_sql: str = Field(..., min_length=1, description="the SELECT whose rows fill the table")
    description: str = Field("", description="what the table holds, for the catalog")
    replace: bool = Field(False, description="replace a table of that name if one exists")
    dialect: str | None = Field(None, description="the SQL dialect of select_sql, if not DuckDB")


class CreateDerivedTable(LatheTool):
    name: str = "create_derived_table"
    description: str = ("Create a new warehouse table from a SELECT query (CREATE TABLE ... AS SELECT) and record it "
                        "in the catalog with its column lineage. Changes the warehouse: needs approval.")
    args_schema: type[BaseModel] = CreateDerivedTableArgs
    risk = Risk.write

    def estimate(self, args: BaseModel) -> str:
        verb = "replaces" if getattr(args, "replace", False) else "creates"
        return f"{verb} table `{getattr(args, 'name', '?')}` in the warehouse"

    def _run(self, name: str, select_sql: str, description: str = "", replace: bool = False,
             dialect: str | None = None) -> ToolOutput:
        from catalog.derived_tables import create_derived_table

        table = create_derived_table(self.workspace, name, select_sql, principal=principal_or_local(self.principal),
                                     dialect=dialect, description=description, replace=replace)
        rows = f"{table.row_count:,} rows, " if table.row_count is not None else ""
        cols = ", ".join(c.name for c in table.columns)
        return ToolOutput(text=f"created table `{table.name}` ({rows}columns: {cols})",
                          data={"table": table.name, "row_count": table.row_count})

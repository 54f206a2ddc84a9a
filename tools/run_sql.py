"""Tool: run one read-only SQL query on the warehouse through the sandboxed, guarded path.

It never writes and never opens a trusted connection; refusals come back as the guard's own errors.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from tools.base import LatheTool, ToolArgs, ToolOutput, principal_or_local, table_text
from tools.risk import Risk


class RunSqlArgs(ToolArgs):
    sql: str = Field(..., min_length=1, description="one read-only statement (SELECT, WITH ... SELECT, DESCRIBE, SUMMARIZE)")
    dialect: str | None = Field(None, description="the SQL dialect it is written in, if not DuckDB (e.g. snowflake)")
    limit: int | None = Field(None, ge=1, description="return at most this many rows")


class RunSql(LatheTool):
    name: str = "run_sql"
    description: str = ("Run one read-only SQL query on the DuckDB warehouse and return its rows. Use table and "
                        "column names from the catalog context. Prefer query_metrics when a metric answers the question.")
    args_schema: type[BaseModel] = RunSqlArgs
    risk = Risk.read

    def estimate(self, args: BaseModel) -> str:
        limit = getattr(args, "limit", None) or self.workspace.settings.sql.row_limit
        return f"reads at most {limit:,} rows"

    def _run(self, sql: str, dialect: str | None = None, limit: int | None = None) -> ToolOutput:
        from catalog.safe_sql import run_sql

        result = run_sql(self.workspace, sql, dialect=dialect, principal=principal_or_local(self.principal), limit=limit)
        return ToolOutput(text=table_text(result), result=result)

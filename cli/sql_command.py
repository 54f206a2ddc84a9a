"""`lathe sql "…"`: run one read statement on the workspace's warehouse, guarded and sandboxed.

Prints a table (warnings on stderr) or, with `--json`, one JSON object. Imports the catalog and DuckDB
only when the command runs, so `lathe --help` stays fast.
"""
from __future__ import annotations

import typer

from cli.context import command, print_result, workspace


def register(app: typer.Typer) -> None:
    @app.command("sql")
    @command
    def sql(
        query: str = typer.Argument(..., help="One read statement: SELECT, WITH … SELECT, DESCRIBE, SHOW, "
                                              "SUMMARIZE or EXPLAIN."),
        dialect: str | None = typer.Option(None, "--dialect", "-d",
                                           help="Dialect the SQL is written in (snowflake, bigquery, postgres, …); "
                                                "it is translated to DuckDB. Default: duckdb."),
        as_json: bool = typer.Option(False, "--json", help="Print {sql, columns, rows, warnings, masked_columns}."),
        limit: int | None = typer.Option(None, "--limit", "-n", min=1,
                                         help="Return at most this many rows (never more than the workspace's "
                                              "[sql] row_limit)."),
    ) -> None:
        """Run one read-only SQL statement on the warehouse (sandboxed; row limit and timeout apply)."""
        from catalog.safe_sql import run_sql

        result = run_sql(workspace(), query, dialect=dialect, limit=limit)
        print_result(result, as_json)

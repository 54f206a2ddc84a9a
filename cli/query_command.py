"""`lathe query`: ask the semantic layer for metrics by dimensions, as a table, JSON or the SQL it would run.

Imports the compiler and DuckDB inside the command, so `lathe --help` stays fast.
"""
from __future__ import annotations

import typer

from cli.context import command, print_result, workspace


def _names(values: list[str] | None) -> list[str]:
    """`--group-by a,b --group-by c` as [a, b, c]; a comma inside `TimeDimension('metric_time', 'month')`
    does not split."""
    out: list[str] = []
    for v in values or []:
        depth, part = 0, ""
        for ch in v + ",":
            depth += (ch == "(") - (ch == ")")
            if ch == "," and depth <= 0:
                out.append(part.strip())
                part = ""
            else:
                part += ch
    return [n for n in out if n]


def engine_message(e: Exception) -> str:
    """DuckDB's error as one line, without the values it quotes (they may be data the caller may not see)."""
    import re

    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    first = re.sub(r"'(?:[^']|'')*'", "'…'", first)
    return first + " (check the types in --where and in the metric's filters)"


def register(app: typer.Typer) -> None:
    @app.command("query")
    @command
    def query(
        metrics: list[str] = typer.Option(..., "--metrics", "-m", help="Metric names, comma-separated."),
        group_by: list[str] = typer.Option(
            None, "--group-by", "-g",
            help="Dimensions, comma-separated: customer__region, metric_time__month, order__customer__segment."),
        where: list[str] = typer.Option(
            None, "--where",
            help="A filter, repeatable: \"{{ Dimension('customer__region') }} = 'EMEA'\" "
                 "or customer__region = 'EMEA'."),
        order_by: list[str] = typer.Option(
            None, "--order-by", "-o", help="Columns to sort by, comma-separated; a leading - sorts descending."),
        limit: int | None = typer.Option(None, "--limit", "-n", min=0, help="Return at most this many rows."),
        explain: bool = typer.Option(False, "--explain", help="Print the SQL only; run nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print {sql, columns, rows} as JSON."),
    ) -> None:
        """Metrics from the semantic layer (MetricFlow YAML in the workspace's catalog/semantic/)."""
        import duckdb
        from pydantic import ValidationError

        from core.errors import UserError
        from catalog.semantic.query import MetricQuery
        from catalog.semantic.runner import compile_for_workspace, run_metric_query

        try:
            q = MetricQuery(metrics=_names(metrics), group_by=_names(group_by), where=list(where or []),
                            order_by=_names(order_by), limit=limit)
        except ValidationError as e:
            err = e.errors()[0]
            raise UserError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from None
        ws = workspace()
        if explain:
            typer.echo(compile_for_workspace(ws, q).sql)
            return
        try:
            result = run_metric_query(ws, q)
        except duckdb.Error as e:
            raise UserError(f"the warehouse could not run the metric query: {engine_message(e)}") from None
        print_result(result, as_json)

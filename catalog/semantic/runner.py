"""Runs a metric query on a workspace: loads its MetricFlow files, compiles, and runs the SQL on the sandboxed
reader with the `[sql]` row limit and timeout of `lathe.toml`.

Reads only; the connection is opened per call and closed before returning.
"""
from __future__ import annotations

import duckdb

from catalog.pii_masking import mask_sql_at_source
from core.principal import Principal
from catalog.results import QueryResult
from catalog.semantic.compiler import TimeSpineTable, compile_query
from catalog.semantic.query import CompiledQuery, MetricQuery
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader, fetch_with_timeout
from core.workspace import Workspace

# MetricFlow's conventional time spine table and its date column.
TIME_SPINE_TABLE, TIME_SPINE_COLUMN = "metricflow_time_spine", "date_day"


def _time_spine(con: duckdb.DuckDBPyConnection) -> TimeSpineTable | None:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [TIME_SPINE_TABLE]).fetchall()
    cols = [r[0] for r in rows]
    if not cols:
        return None
    return TimeSpineTable(TIME_SPINE_TABLE, TIME_SPINE_COLUMN if TIME_SPINE_COLUMN in cols else cols[0])


def compile_for_workspace(ws: Workspace, query: MetricQuery) -> CompiledQuery:
    """The SQL `run_metric_query` would run (for `--explain`)."""
    manifest = CatalogStore(ws).load_semantic()
    with connect_reader(ws) as con:
        spine = _time_spine(con)
    return compile_query(manifest, query, spine)


def run_metric_query(ws: Workspace, query: MetricQuery, principal: Principal | None = None) -> QueryResult:
    manifest = CatalogStore(ws).load_semantic()
    settings = ws.settings.sql
    with connect_reader(ws) as con:
        compiled = compile_query(manifest, query, _time_spine(con))
        # PII the principal may not see is masked where it enters the query, as for any SQL.
        sql = mask_sql_at_source(con, compiled.sql, principal or Principal.local_admin(), CatalogStore(ws).load())
        columns, rows, cut = fetch_with_timeout(con, sql, settings.timeout_s, settings.row_limit)
    warnings = list(compiled.warnings)
    if cut:
        warnings.append(f"only the first {settings.row_limit} rows are shown (the [sql] row_limit of lathe.toml); "
                        "add --limit or a filter")
    return QueryResult(sql=compiled.sql, columns=compiled.columns, rows=[list(r) for r in rows],
                       truncated=cut, warnings=warnings)


def data_span(ws: Workspace, query: MetricQuery) -> list[str] | None:
    """The first and last day with data for the query's metrics under its filters (ISO dates), or None where its
    metrics have no time dimension or no row passes."""
    from core.errors import UserError

    daily = query.model_copy(update={"group_by": ["metric_time__day"], "order_by": [], "limit": None})
    manifest = CatalogStore(ws).load_semantic()
    with connect_reader(ws) as con:  # one connection for the time spine and the query
        try:
            sql = compile_query(manifest, daily, _time_spine(con)).sql
        except (UserError, ValueError):
            return None
        _, rows, _ = fetch_with_timeout(con, f"SELECT MIN(metric_time__day), MAX(metric_time__day) FROM ({sql})",
                                        ws.settings.sql.timeout_s)
    first, last = rows[0] if rows else (None, None)
    return [first.isoformat()[:10], last.isoformat()[:10]] if first is not None and last is not None else None

"""`run_sql`: one read statement from a person or an LLM, guarded, masked, limited and checked, on the sandbox.

The order is fixed: the guard admits the statement, PII masking rewrites it for the principal, DuckDB's
sandboxed reader runs it under the row limit and timeout, and join checks add their warnings. It never
opens a writable connection and never runs a statement the guard has not admitted.
"""
from __future__ import annotations

import time

import duckdb

from core.errors import UserError
from catalog.join_checks import join_warnings
from catalog.pii_masking import mask_pii
from core.principal import Principal
from catalog.query_schema import warehouse_catalog
from catalog.results import QueryResult
from catalog.sql_guard import guard
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader, fetch_with_timeout
from core.workspace import Workspace

_ROW_QUERIES = ("SELECT", "UNION", "INTERSECT", "EXCEPT")


def run_sql(ws: Workspace, sql: str, *, dialect: str | None = None, principal: Principal | None = None,
            limit: int | None = None) -> QueryResult:
    """Run one read statement on the workspace's warehouse. `limit` can only lower the workspace's
    row limit. Raises `UserError` (and its `RefusedStatement`) for anything the user can fix."""
    principal = principal or Principal.local_admin()
    settings = ws.settings.sql
    if limit is not None and limit < 1:
        raise UserError(f"the row limit must be at least 1, not {limit}")
    max_rows = min(settings.row_limit, limit) if limit else settings.row_limit
    catalog = CatalogStore(ws).load()
    with connect_reader(ws) as con:
        tables = warehouse_catalog(con, catalog)
        guarded = guard(sql, dialect, tables)
        masked = mask_pii(con, guarded, tables, principal)
        try:
            final = masked.tree.sql(dialect="duckdb")
            started = time.monotonic()
            columns, rows, cut = fetch_with_timeout(con, final, settings.timeout_s, max_rows)
            warnings = list(masked.warnings)
            if cut:
                asked = limit is not None and limit < settings.row_limit
                origin = "the limit asked for" if asked else "[sql] row_limit in lathe.toml"
                warnings.append(f"only the first {max_rows:,} rows are shown ({origin})")
            if guarded.kind in _ROW_QUERIES and guarded.query is not None and not masked.rewritten:
                left = settings.timeout_s - (time.monotonic() - started)
                warnings += join_warnings(con, guarded.query, guarded.tables, timeout_s=max(left, 1.0))
        except duckdb.Error as e:
            if masked.hidden_read:
                # DuckDB quotes the offending value ("Could not convert string 'ann@x.com'"): keep only its kind.
                kind = _first_line(e).split(":", 1)[0]
                raise UserError(f"DuckDB could not run the query ({kind}); the details are withheld because the "
                                f"query reads PII you have no grant for ({', '.join(masked.hidden_read)})") from None
            raise UserError(f"DuckDB could not run the query: {_first_line(e)}") from None
    return QueryResult(sql=final, columns=columns, rows=[list(r) for r in rows], truncated=cut,
                       warnings=warnings, masked_columns=masked.masked_columns)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

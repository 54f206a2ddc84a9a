"""Where a dataset's rows come from: a catalog table or one read-only SQL query, always through `run_sql`
(guard, PII masking for the principal, sandboxed reader).

It never opens a writable connection, and it refuses a result cut short by the row limit rather than
training on part of the data without saying so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from catalog.data_source import Query, Table
from core.errors import UserError
from core.principal import Principal
from catalog.safe_sql import run_sql
from core.workspace import Workspace


@dataclass(frozen=True)
class SourceRows:
    sql: str  # the statement that ran, as DuckDB SQL (recorded with the prepared dataset)
    columns: list[str]
    rows: list[list[Any]]
    tables: list[str]  # warehouse tables the statement reads
    masked_columns: list[str]


def read_source(ws: Workspace, source: Table | Query, *, principal: Principal | None = None) -> SourceRows:
    """All rows of a catalog table or of a read query."""
    result = run_sql(ws, source.statement(), principal=principal)
    if result.truncated:
        raise UserError(f"the dataset has more rows than the workspace's row limit "
                        f"({ws.settings.sql.row_limit:,}); raise `row_limit` under [sql] in lathe.toml, or "
                        "narrow the query, so that no row is left out of training without notice")
    if not result.rows:
        raise UserError(f"the dataset is empty: `{result.sql}` returned no rows")
    return SourceRows(sql=result.sql, columns=list(result.columns), rows=result.rows,
                      tables=tables_read(result.sql), masked_columns=list(result.masked_columns))


def tables_read(sql: str) -> list[str]:
    """Names of the warehouse tables a DuckDB statement reads, sorted (common table expressions left out)."""
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    names = [t.name for t in tree.find_all(exp.Table) if t.name and t.name.lower() not in ctes]
    return sorted(set(names))

"""Profile a warehouse table: row count and, per column, nulls, distinct values, min/max, top values
and samples; propose personal-data tags from what the values look like.

Stats are written back to the catalog in one transaction, keeping an analyst's descriptions, tags and
PII tags; proposals are applied only when asked. Values of personal-data columns never enter the catalog.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
from pydantic import BaseModel, Field
from sqlglot import exp

from core.errors import UserError
from catalog.metadata import Column, ColumnStats, PiiTag, Table
from catalog.pii_detection import explain_pii
from catalog.results import json_value
from catalog.suggestions import unknown
from core.workspace import Workspace

# A column with at most this many distinct values (and each seen at least twice on average) is
# categorical: all its values are listed with their counts.
CATEGORICAL_MAX_DISTINCT = 20
# Above this many rows, distinct counts are DuckDB's HyperLogLog estimates (within a few percent).
EXACT_DISTINCT_MAX_ROWS = 1_000_000
SAMPLE_ROWS = 1000          # rows read to sample values and look for personal data
SAMPLE_VALUES = 5           # sample values kept for a non-categorical column
SAMPLE_TEXT_CHARS = 120     # longer text samples are cut, so the catalog stays readable

_ORDERABLE_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                       "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL", "DATE",
                       "TIME", "TIMESTAMP", "BOOLEAN", "INTERVAL")


class PiiProposal(BaseModel):
    column: str
    tag: PiiTag
    reason: str


class ProfileReport(BaseModel):
    """What a profile found: the table as it now stands in the catalog, and the PII it proposes."""
    table: Table
    proposed_pii: list[PiiProposal] = Field(default_factory=list)
    applied_pii: list[str] = Field(default_factory=list, description="columns tagged by this profile (--accept-pii)")
    dropped_columns: list[str] = Field(default_factory=list, description="catalogued columns the table no longer has")
    approximate_distinct: bool = False

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _quoted_table(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def warehouse_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                       "ORDER BY table_name").fetchall()
    return [r[0] for r in rows]


def resolve_table(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The warehouse's own spelling of a table name, or a UserError that suggests close names."""
    tables = warehouse_tables(con)
    match = next((t for t in tables if t == name), None) or next((t for t in tables if t.lower() == name.lower()), None)
    if match is None:
        raise UserError(unknown("table", name, tables))
    return match


def warehouse_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' "
                       "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()
    return [(r[0], r[1]) for r in rows]


def _orderable(data_type: str) -> bool:
    t = data_type.upper()
    return t.startswith(_ORDERABLE_PREFIXES) and "[" not in t


def _nested(data_type: str) -> bool:
    t = data_type.upper()
    return "[" in t or t.startswith(("STRUCT", "MAP", "UNION", "LIST", "BLOB"))


def _sample_value(v: Any) -> Any:
    v = json_value(v)
    if isinstance(v, str) and len(v) > SAMPLE_TEXT_CHARS:
        return v[:SAMPLE_TEXT_CHARS].rstrip() + "…"
    return v


def build_profile(con: duckdb.DuckDBPyConnection, name: str, base: Table | None = None, *,
                  accept_pii: bool = False) -> ProfileReport:
    """Profile `name` on an open connection and merge the result into `base`; writes nothing."""
    table_name = resolve_table(con, name)
    columns = warehouse_columns(con, table_name)
    source = _quoted_table(table_name)

    row_count = con.execute(exp.select(exp.Count(this=exp.Star())).from_(source).sql("duckdb")).fetchone()[0]
    approximate = row_count > EXACT_DISTINCT_MAX_ROWS
    aggs: list[exp.Expression] = []
    for i, (col, data_type) in enumerate(columns):
        c = _column(col)
        distinct = exp.ApproxDistinct(this=c) if approximate else exp.Count(this=exp.Distinct(expressions=[c]))
        aggs += [exp.Count(this=c).as_(f"n{i}"), distinct.as_(f"d{i}")]
        if _orderable(data_type):
            aggs += [exp.Min(this=c).as_(f"lo{i}"), exp.Max(this=c).as_(f"hi{i}")]
    stats_row: dict[str, Any] = {}
    if aggs:
        cur = con.execute(exp.select(*aggs).from_(source).sql("duckdb"))
        stats_row = dict(zip([d[0] for d in cur.description], cur.fetchone()))

    sample_cur = con.execute(exp.select(exp.Star()).from_(source).limit(SAMPLE_ROWS).sql("duckdb"))
    sample_rows = sample_cur.fetchall()
    samples: dict[str, list[Any]] = {}
    for j, (col, _) in enumerate(columns):
        seen: dict[Any, None] = {}
        for row in sample_rows:
            v = row[j]
            if v is not None:
                try:
                    seen.setdefault(v, None)
                except TypeError:  # lists and structs are not hashable; keep them as they come
                    seen.setdefault(repr(v), None)
        samples[col] = list(seen)

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    old_columns = {c.name.lower(): c for c in base.columns} if base else {}
    report = ProfileReport(table=Table(name=table_name), approximate_distinct=approximate)
    new_columns: list[Column] = []
    for i, (col, data_type) in enumerate(columns):
        old = old_columns.pop(col.lower(), None)
        column = old.model_copy(deep=True) if old else Column(name=col)
        column.name, column.type = col, data_type
        non_null = stats_row.get(f"n{i}", 0) or 0
        distinct_count = int(stats_row.get(f"d{i}", 0) or 0)

        finding = None if _nested(data_type) else explain_pii(col, samples[col][:200])
        if finding and column.pii is None:
            report.proposed_pii.append(PiiProposal(column=col, tag=finding.tag, reason=finding.reason))
            if accept_pii:
                column.pii = finding.tag
                report.applied_pii.append(col)
        personal = column.pii is not None or finding is not None

        stats = ColumnStats(row_count=row_count, null_count=row_count - non_null, distinct_count=distinct_count,
                            profiled_at=now)
        categorical = (0 < distinct_count <= CATEGORICAL_MAX_DISTINCT and non_null >= 2 * distinct_count
                       and not _nested(data_type))
        if personal:
            column.sample_values = []  # never copy personal data into the catalog
        else:
            if _orderable(data_type):
                stats.min, stats.max = json_value(stats_row.get(f"lo{i}")), json_value(stats_row.get(f"hi{i}"))
            if categorical:
                c = _column(col)
                top = con.execute(
                    exp.select(c, exp.Count(this=exp.Star()).as_("n")).from_(source).where(c.is_(exp.null()).not_())
                    .group_by(c).order_by(exp.column("n").desc(), c).limit(CATEGORICAL_MAX_DISTINCT).sql("duckdb")
                ).fetchall()
                stats.top_values = [(json_value(v), n) for v, n in top]
                column.sample_values = [json_value(v) for v, _ in top]
            else:
                column.sample_values = [_sample_value(v) for v in samples[col][:SAMPLE_VALUES]]
        column.stats = stats
        new_columns.append(column)

    merged = base.model_copy(deep=True) if base else Table(name=table_name)
    merged.name, merged.row_count, merged.columns = table_name, row_count, new_columns
    report.table = merged
    report.dropped_columns = [c.name for c in old_columns.values()]
    return report


def profile_report(ws: Workspace, name: str, *, accept_pii: bool = False) -> ProfileReport:
    """Profile a table on the sandboxed reader and write its stats into the catalog in one transaction."""
    from catalog.store import CatalogStore
    from catalog.warehouse import connect_reader

    store = CatalogStore(ws)
    with connect_reader(ws) as con:
        table_name = resolve_table(con, name)
        report = build_profile(con, table_name, store.load_table(table_name), accept_pii=accept_pii)
    with store.transaction() as txn:
        txn.put_table(report.table)
    return report


def profile_table(ws: Workspace, name: str) -> Table:
    """Profile a table, write its stats into the catalog and return it as stored (no PII tags applied)."""
    return profile_report(ws, name).table

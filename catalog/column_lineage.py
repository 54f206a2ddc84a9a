"""Column lineage: which source `table.column`s each output column of a query is computed from.

Built on `sqlglot.lineage` over a query qualified against the warehouse's schema, and traced through
derived tables with the lineage the catalog stores. It reads trees and metadata only; it never runs SQL.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, to_node
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope
from sqlglot.schema import ensure_schema

from core.errors import UserError
from catalog.metadata import Catalog
from catalog.sql_guard import unknown_in
from catalog.suggestions import unknown

# Aggregates that count values without showing them: an output made only of these reveals no value.
_COUNTING = (exp.Count, exp.ApproxDistinct, exp.CountIf)


@dataclass
class OutputLineage:
    """One output column of a query, by position."""
    name: str
    sources: list[str] = field(default_factory=list)
    # True where part of the column comes from something lineage cannot see into (a table function's
    # argument, an unnest of a subquery): callers that protect data treat it as possibly any source.
    uncertain: bool = False


def column_lineage(select_tree: exp.Query, schema: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Output column name → the sorted `table.column`s it is computed from (through CTEs, subqueries,
    set operations and stars)."""
    return {o.name: o.sources for o in lineage_by_position(select_tree, schema)}


def lineage_by_position(tree: exp.Query, schema: dict[str, dict[str, str]], *,
                        ignore_counted: bool = False) -> list[OutputLineage]:
    """The lineage of each output column in order (names may repeat). With `ignore_counted`, columns
    that only feed COUNT(…)-like aggregates are not sources: a count of emails shows no email."""
    try:
        qualified = qualify(tree.copy(), schema=schema, dialect="duckdb", validate_qualify_columns=False,
                            allow_partial_qualification=True, quote_identifiers=False, identify=False)
    except SqlglotError as e:
        raise UserError(f"cannot trace the columns of this query: {str(e).splitlines()[0]}") from None
    if ignore_counted:
        qualified = _without_counted_columns(qualified)
    patterned = _patterned_star(qualified)
    scope = build_scope(qualified)
    if scope is None or not isinstance(qualified, exp.Query):
        raise UserError("column lineage needs a SELECT query")
    sg_schema = ensure_schema(schema, dialect="duckdb")
    cache: dict[tuple, Node] = {}
    meta: dict[int, Any] = {}
    out = []
    for i, name in enumerate(qualified.named_selects):
        try:
            node = to_node(i, scope, "duckdb", schema=sg_schema, _cache=cache, _scope_meta=meta)
        except (SqlglotError, ValueError) as e:
            raise UserError(f"cannot trace output column `{name}`: {str(e).splitlines()[0]}") from None
        sources, uncertain = _leaves(node, schema)
        out.append(OutputLineage(name=name, sources=sorted(sources), uncertain=uncertain or patterned))
    return out


def _patterned_star(tree: exp.Expr) -> bool:
    """Whether a star picks its columns by a pattern (`* LIKE 'e%'`, `* SIMILAR TO …`, COLUMNS(…)): which
    columns it yields is decided by DuckDB at bind time, so lineage cannot name them."""
    for star in tree.find_all(exp.Star):
        if not isinstance(star.parent, (exp.Select, exp.Column, exp.Count, exp.AggFunc, exp.Anonymous)):
            return True
    return any(True for _ in tree.find_all(exp.Columns))


def _without_counted_columns(tree: exp.Expr) -> exp.Expr:
    def strip(node: exp.Expr) -> exp.Expr:
        counting = isinstance(node, _COUNTING) or (isinstance(node, exp.Filter) and isinstance(node.this, _COUNTING))
        if counting:
            for col in list(node.find_all(exp.Column)):
                col.replace(exp.null())
        return node

    return tree.transform(strip, copy=True)


def _leaves(root: Node, schema: dict[str, dict[str, str]]) -> tuple[set[str], bool]:
    tables = {t.lower(): t for t in schema}
    sources: set[str] = set()
    uncertain = False
    for node in root.walk():
        if node.downstream:
            continue
        expr = node.expression
        if isinstance(expr, exp.Placeholder):
            uncertain = True
        elif isinstance(expr, exp.Table):
            if isinstance(expr.this, exp.Func):
                uncertain = uncertain or any(True for _ in expr.this.find_all(exp.Column, exp.Query))
                continue
            real = tables.get(expr.name.lower(), expr.name)
            col = exp.to_column(node.name, dialect="duckdb")
            if isinstance(col.this, exp.Star) or node.name.endswith("*"):
                sources.update(f"{real}.{c}" for c in schema.get(real, {}))
            else:
                cols = {c.lower(): c for c in schema.get(real, {})}
                sources.add(f"{real}.{cols.get(col.name.lower(), col.name)}")
    return sources, uncertain


# ---- tracing through derived tables --------------------------------------------------------------


def trace_upstream(catalog: Catalog, table: str, column: str) -> dict[str, Any]:
    """`{"column": "t.c", "derived": bool, "sql": …, "sources": [same shape, …]}`: a column's sources,
    recursively through every derived table the catalog records lineage for (`derived` is false for a
    column with no recorded lineage, i.e. source data). Raises `UserError` for an unknown table or column."""
    t = catalog.table(table)
    if t is None:
        raise UserError(unknown("table", table, catalog.tables))
    c = t.column(column)
    if c is None and not catalog.lineage_of(t.name, column):
        raise UserError(unknown_in("column", column, [x.name for x in t.columns], f"table `{t.name}`"))
    return _trace(catalog, t.name, c.name if c else column, seen=set())


def _trace(catalog: Catalog, table: str, column: str, seen: set[str]) -> dict[str, Any]:
    key = f"{table}.{column}"
    records = catalog.lineage_of(table, column)
    entry: dict[str, Any] = {"column": key, "derived": bool(records)}
    if not records or key.lower() in seen:
        entry["sources"] = []
        return entry
    record = records[-1]
    if record.sql:
        entry["sql"] = record.sql
    inner = seen | {key.lower()}
    entry["sources"] = [_trace(catalog, *src.split(".", 1), seen=inner) for src in record.sources]
    return entry

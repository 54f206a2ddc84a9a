"""Chooses a chart for a result table: a line over a time axis, or bars over a category axis; and whether its rows
are parts of a whole that a pie may show (one measure the query adds up, over a few categories).

Looks at column names, values and the query's SQL only; it never draws (front-ends do) and never charts one row.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from agent.events import ChartSpec
from agent.state import TableData

_TIME_WORDS = ("metric_time", "date", "day", "week", "month", "quarter", "year", "_at", "time")
MAX_SLICES = 8  # categories a pie may have; more slices are better read as bars


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_time_value(v: Any) -> bool:
    if not isinstance(v, str) or len(v) < 7:
        return False
    try:
        dt.datetime.fromisoformat(v if len(v) > 7 else v + "-01")
        return True
    except ValueError:
        return False


def chart_for(step_id: str, table: TableData) -> ChartSpec | None:
    rows, cols = table.rows, table.columns
    if len(rows) < 2 or len(cols) < 2:
        return None
    values = {c: [r[i] for r in rows if r[i] is not None] for i, c in enumerate(cols)}
    numeric = [c for c in cols if values[c] and all(_is_number(v) for v in values[c])]
    time_cols = [c for c in cols if c not in numeric and values[c] and all(_is_time_value(v) for v in values[c])
                 and any(w in c.lower() for w in _TIME_WORDS)]
    categories = [c for c in cols if c not in numeric and c not in time_cols and values[c]
                  and all(isinstance(v, str) for v in values[c])]  # a long list is drawn by its top rows
    if time_cols:
        x, kind = time_cols[0], "line"
    elif categories:
        x, kind = categories[0], "bar"
    else:
        return None
    y = [c for c in numeric if c != x and not c.lower().endswith("_id")][:3]
    if not y:
        return None
    color = next((c for c in categories if c != x), None)
    if color is not None and len(y) > 1:
        y = y[:1]  # one measure per colour series keeps the chart readable
    pie = (kind == "bar" and color is None and len(y) == 1 and len(rows) <= MAX_SLICES
           and all(v >= 0 for v in values[y[0]]) and y[0] in additive_columns(table.sql))
    return ChartSpec(step_id=step_id, kind=kind, x=x, y=y, color=color, title=", ".join(y) + f" by {x}", pie=pie)


def additive_columns(sql: str) -> set[str]:
    """The result columns of `sql` whose values add up over its groups: a SUM or a COUNT (not of distinct values),
    traced by name through the CTEs and subqueries they come from. An average, a ratio, a percentile, a plain
    column or SQL that does not parse is not additive; neither is a column of a set operation."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.scope import build_scope

    try:
        root = build_scope(sqlglot.parse_one(sql, read="duckdb")) if sql.strip() else None
    except sqlglot.errors.SqlglotError:
        return set()
    if root is None or not isinstance(root.expression, exp.Select):
        return set()

    def adds_up(e: exp.Expression, scope: object, depth: int = 0) -> bool:
        while isinstance(e, (exp.Alias, exp.Cast, exp.TryCast, exp.Paren, exp.Filter)):
            e = e.this
        if isinstance(e, exp.Sum):
            return True
        if isinstance(e, exp.Count):
            return not isinstance(e.this, exp.Distinct)
        if isinstance(e, exp.Column) and depth < 10:  # a column of a CTE or subquery: what it is there
            sources = scope.selected_sources  # type: ignore[attr-defined]
            name = e.table or (next(iter(sources)) if len(sources) == 1 else "")
            inner = sources.get(name, (None, None))[1]
            if inner is not None and not isinstance(inner, exp.Table) and isinstance(inner.expression, exp.Select):
                match = next((p for p in inner.expression.expressions if p.alias_or_name == e.name), None)
                return match is not None and adds_up(match, inner, depth + 1)
        return False

    return {p.alias_or_name for p in root.expression.expressions if adds_up(p, root)}

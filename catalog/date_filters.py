"""The dates a query's filters keep: comparisons of a column with a date literal in its WHERE clauses, read with
sqlglot ("ordered_at >= DATE '2026-07-01'", "BETWEEN '2026-01-01' AND '2026-03-31'").

Reads SQL only; it never runs it.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

_DAY = dt.timedelta(days=1)


def _date(node: Any) -> dt.date | None:
    """The date a literal stands for: '2026-07-01', DATE '2026-07-01', CAST('2026-07-01' AS DATE/TIMESTAMP)."""
    from sqlglot import exp

    while isinstance(node, (exp.Cast, exp.TryCast, exp.Paren)):
        node = node.this
    if isinstance(node, (exp.Date, exp.TsOrDsToDate)) and node.expressions == []:
        node = node.this
    if not (isinstance(node, exp.Literal) and node.is_string) or len(node.this) < 10:
        return None
    try:
        return dt.datetime.fromisoformat(node.this.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _has_column(node: Any) -> bool:
    from sqlglot import exp

    return node.find(exp.Column) is not None


def filter_window(sql: str) -> tuple[dt.date | None, dt.date | None]:
    """(first day, last day) the SQL's WHERE clauses keep, from comparisons of a column with a date literal; either
    end None where no filter bounds it. Every bound is one more condition, so the tightest of each is kept."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb") if sql.strip() else None
    except sqlglot.errors.ParseError:
        return None, None
    if tree is None:
        return None, None
    starts: list[dt.date] = []
    ends: list[dt.date] = []
    # The column on the left: x >= d is a start; the literal on the left flips the comparison.
    flipped = {exp.GTE: exp.LTE, exp.GT: exp.LT, exp.LTE: exp.GTE, exp.LT: exp.GT, exp.EQ: exp.EQ}
    for where in tree.find_all(exp.Where):
        for node in where.find_all(exp.Between, *flipped):
            if isinstance(node, exp.Between):
                low, high = _date(node.args.get("low")), _date(node.args.get("high"))
                if _has_column(node.this) and low and high:
                    starts.append(low)
                    ends.append(high)
                continue
            kind, day = type(node), _date(node.expression)
            if day is None or not _has_column(node.this):
                day = _date(node.this)
                if day is None or not _has_column(node.expression):
                    continue
                kind = flipped[kind]
            if kind in (exp.GTE, exp.EQ):
                starts.append(day)
            if kind in (exp.LTE, exp.EQ):
                ends.append(day)
            if kind is exp.GT:
                starts.append(day + _DAY)
            if kind is exp.LT:
                ends.append(day - _DAY)
    return (max(starts) if starts else None), (min(ends) if ends else None)

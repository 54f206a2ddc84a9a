"""Chooses a chart for a result table: a line over a time axis, or bars over a category axis.

Looks at column names and values only; it never draws (front-ends do) and never charts one row.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from agent.events import ChartSpec
from agent.state import TableData

_TIME_WORDS = ("metric_time", "date", "day", "week", "month", "quarter", "year", "_at", "time")


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
    return ChartSpec(step_id=step_id, kind=kind, x=x, y=y, color=color, title=", ".join(y) + f" by {x}")

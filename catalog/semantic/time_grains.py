"""Time grains, date parts and windows of MetricFlow, as sqlglot expressions for DuckDB.

Knows the order of grains, how to truncate or extract a part of a time expression and how to read a
window such as `7 days`; it never decides which column a metric's time is.
"""
from __future__ import annotations

import re

from sqlglot import exp

from core.errors import UserError
from catalog.semantic.spec import DATE_PARTS, GRAINS
from catalog.suggestions import unknown

_RANK = {g: i for i, g in enumerate(GRAINS)}
# DuckDB's EXTRACT names for MetricFlow's date parts: ISO day of week (Monday is 1), as MetricFlow.
_EXTRACT = {"year": "YEAR", "quarter": "QUARTER", "month": "MONTH", "week": "WEEK", "day": "DAY",
            "dow": "ISODOW", "doy": "DOY"}
_WINDOW = re.compile(r"^\s*(\d+)\s+([a-z_]+?)s?\s*$")


def grain_rank(grain: str) -> int:
    return _RANK[grain]


def check_grain(grain: str, what: str = "time grain") -> str:
    g = grain.strip().lower()
    if g not in _RANK:
        raise UserError(unknown(what, grain, GRAINS) + " (custom granularities are not supported yet)")
    return g


def check_date_part(part: str) -> str:
    p = part.strip().lower()
    if p not in DATE_PARTS:
        raise UserError(unknown("date part", part, DATE_PARTS))
    return p


def coarser_or_same(grain: str, than: str) -> bool:
    return _RANK[grain] >= _RANK[than]


def trunc(grain: str, e: exp.Expression) -> exp.Expression:
    return exp.TimestampTrunc(this=e, unit=exp.var(grain.upper()))


def extract(part: str, e: exp.Expression) -> exp.Expression:
    return exp.Extract(this=exp.var(_EXTRACT[part]), expression=e)


def interval(count: int, unit: str) -> exp.Expression:
    """`INTERVAL 'n' UNIT`; quarters are written as three months so that DuckDB keeps calendar months."""
    if unit == "quarter":
        count, unit = count * 3, "month"
    return exp.Interval(this=exp.Literal.string(str(count)), unit=exp.var(unit.upper()))


def parse_window(text: str, where: str) -> tuple[int, str]:
    """`7 days` / `1 month` / `2 weeks` as (7, 'day'); anything else is a clear error naming `where`."""
    m = _WINDOW.match(str(text).lower())
    if not m or m.group(2) not in _RANK:
        raise UserError(f"{where}: `{text}` is not a window; write a count and a grain, such as `7 days` or "
                        f"`1 month` (grains: {', '.join(GRAINS)}; custom granularities are not supported yet)")
    return int(m.group(1)), m.group(2)

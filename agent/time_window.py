"""The time window a result covers: the query's filters on dates (`catalog.date_filters`), with an open end
taken from the data's own span; and that window as a report names it ("Q3 2026 (2026-07-01 to 2026-09-30)").

Reads SQL only; it never runs a query (the tool that ran one hands over the data's span).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from catalog.date_filters import filter_window

Window = tuple[dt.date, dt.date]
_DAY = dt.timedelta(days=1)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # not strftime's %B, which follows the locale


def _day(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value if not isinstance(value, dt.datetime) else value.date()
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            return None
    return None


def window_of(sql: str, span: tuple[Any, Any] | list[Any] | None = None) -> Window | None:
    """The window a result covers: the filters' ends, each open end the data's (`span`, its first and last day);
    None when either end stays unknown."""
    start, end = filter_window(sql)
    first, last = (_day(span[0]), _day(span[1])) if span else (None, None)
    start, end = start or first, end or last
    return (start, end) if start is not None and end is not None and start <= end else None


def describe_window(start: dt.date, end: dt.date) -> str:
    """A whole year, quarter or month by its name with its days; any other range by its first and last day."""
    days = f"{start.isoformat()} to {end.isoformat()}"
    if start == end:
        return start.isoformat()
    after = end + _DAY
    if start.day == 1 and after.day == 1:
        months = (after.year - start.year) * 12 + after.month - start.month
        if months == 12 and start.month == 1:
            return f"{start.year} ({days})"
        if months == 3 and start.month % 3 == 1:
            return f"Q{(start.month - 1) // 3 + 1} {start.year} ({days})"
        if months == 1:
            return f"{_MONTHS[start.month - 1]} {start.year} ({days})"
    return days


def window_phrase(window: Window | None) -> str:
    """" for Q3 2026 (…)", " from 2025-01-04 to 2026-12-03", " on 2026-07-01", or nothing without a window."""
    if window is None:
        return ""
    text = describe_window(*window)
    if window[0] == window[1]:
        return f" on {text}"
    return f" for {text}" if "(" in text else f" from {text}"

"""Results as a report reads them: column labels ("Region", "Month", the semantic layer's `label`), dates at
their grain ("2025-03", "Q3 2026"), compact figures ("17.6 M"), and one plain sentence saying what a result shows.

Pure functions of a table's columns and values; every front-end and the answer's last sentence share them.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.state import TableData

GRAINS = ("day", "week", "month", "quarter", "year")
_TIME_NAMES = ("metric_time", "date", "day", "week", "month", "quarter", "year", "time")


def grain_of(column: str) -> str | None:
    """The time grain a column is at, from its name: `metric_time__month` → month; `order_date` → day."""
    last = column.rsplit("__", 1)[-1].lower()
    if last in GRAINS:
        return last
    return "day" if any(w in column.lower() for w in ("date", "metric_time")) else None


def humanise(column: str) -> str:
    """`customer__region` → "Region", `metric_time__month` → "Month", `units_sold` → "Units sold"."""
    last = column.rsplit("__", 1)[-1]
    if last.lower() in GRAINS and "__" in column:
        return last.capitalize()
    text = " ".join(last.replace("_", " ").split())
    return (text[:1].upper() + text[1:]) if text else column


def label(column: str, labels: dict[str, str] | None = None) -> str:
    """The semantic layer's label for a column (by its full name, then its last part), else a humanised name."""
    labels = labels or {}
    return labels.get(column) or labels.get(column.rsplit("__", 1)[-1]) or humanise(column)


_SEMANTIC_NAME = re.compile(r"\b[A-Za-z0-9_]+__[A-Za-z0-9_]+\b")  # `customer__region`, `metric_time__month`


def said_names(text: str, labels: dict[str, str] | None = None) -> str:
    """A title with the semantic layer's names said as their labels: "revenue by customer__region" → "revenue by
    region"; other words (a table's name) stay."""
    return _SEMANTIC_NAME.sub(lambda m: label(m.group(), labels).lower(), text)


def at_grain(value: Any, grain: str | None) -> Any:
    """An ISO date or timestamp shown at its grain; any other value as it is."""
    if grain is None or not isinstance(value, str) or len(value) < 10:
        return value
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if grain == "year":
        return f"{t.year}"
    if grain == "quarter":
        return f"Q{(t.month - 1) // 3 + 1} {t.year}"
    if grain == "month":
        return f"{t.year}-{t.month:02d}"
    if t.time() == dt.time(0) or grain in ("day", "week"):
        return t.date().isoformat()
    return value


def compact(value: Any) -> str:
    """A figure for a sentence: 17,600,000 → "17.6 M", 12,345.6 → "12,346", 0.25 → "0.25"."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    a = abs(value)
    for size, unit in ((1e9, "B"), (1e6, "M")):
        if a >= size:
            return f"{value / size:,.1f} {unit}"
    if a >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
_PERCENT = ("percent", "%", "pct")
_UNIT_IN_LABEL = re.compile(r"\s*\(([^()]+)\)\s*$")  # "Resolution time (hours)"


def is_percent(unit: str | None) -> bool:
    """A share: its values are fractions (0.125), read as "12.5%"."""
    return unit is not None and unit.lower() in _PERCENT


def unit_label(text: str, unit: str | None) -> str:
    """A column's label with its unit, as a header or an axis names it: "Revenue (USD)"; a label that names its
    unit already keeps it once, and a share says its unit in its values ("12.5%"), not in its header."""
    if not unit or is_percent(unit) or _UNIT_IN_LABEL.search(text):
        return text
    return f"{text} ({unit})"


def presented(table: TableData, labels: dict[str, str] | None = None,
              units: dict[str, str] | None = None) -> TableData:
    """The table with labelled columns (with their metric's unit) and dates at their grain; numbers stay numbers,
    for charts and CSV."""
    units = units or {}
    grains = [grain_of(c) for c in table.columns]
    rows = [[at_grain(v, g) for v, g in zip(r, grains)] for r in table.rows]
    named = {c: unit_label(label(c, labels), units.get(c)) for c in [*table.columns, *table.masked_columns]}
    return table.model_copy(update={"columns": [named[c] for c in table.columns], "rows": rows,
                                    "masked_columns": [named[c] for c in table.masked_columns]})


def readable(table: TableData, labels: dict[str, str] | None = None,
             units: dict[str, str] | None = None) -> TableData:
    """The table as a person reads it in a message: `presented`, with shares written as percentages ("12.5%");
    other figures stay numbers for the front-end's own formatting (thousands separators)."""
    shown = presented(table, labels, units)
    shares = [i for i, c in enumerate(table.columns) if is_percent((units or {}).get(c))]
    if not shares:
        return shown
    rows = [[with_unit(v, "percent") if i in shares and _is_number(v) else v for i, v in enumerate(r)]
            for r in shown.rows]
    return shown.model_copy(update={"rows": rows})


def with_unit(value: Any, unit: str | None) -> str:
    """A compact figure with its unit: "$17.6 M", "6.1%" (the value a fraction, as ratio metrics are), "12.35 hours"."""
    if unit is None or not _is_number(value):
        return compact(value)
    if is_percent(unit):
        return f"{value * 100:,.1f}%"
    sign = _CURRENCY_SIGNS.get(unit.upper()) or (unit if unit in _CURRENCY_SIGNS.values() else None)
    if sign:
        return ("-" if value < 0 else "") + sign + compact(abs(value))
    return f"{compact(value)} {unit}"


def _plural(noun: str) -> str:
    """"regions", "statuses", "categories", "days": enough English for the nouns a result's columns name."""
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"


def _said(column: str, labels: dict[str, str] | None, unit: str | None) -> str:
    """A column's label inside a sentence, without a unit the figure already carries."""
    text = label(column, labels)
    found = _UNIT_IN_LABEL.search(text)
    return text[:found.start()] if found and unit else text


def summary_sentence(title: str, table: TableData, labels: dict[str, str] | None = None, *,
                     window: tuple[dt.date, dt.date] | None = None, units: dict[str, str] | None = None) -> str:
    """One plain sentence: what was computed, over which time window, and what stands out (the leader, the range,
    the single value), figures in their metric's unit."""
    from agent.time_window import window_phrase

    units = units or {}
    t = presented(table, labels)
    n = max(t.row_count, len(t.rows))
    said = {c: _said(c, labels, units.get(c)) for c in table.columns}
    named = {**{k: _said(k, labels, units.get(k)) for k in (labels or {})}, **said}
    what = re.sub(r"\b[A-Za-z0-9_]+\b", lambda m: (named[m.group()].lower() if m.group() in named else
                                                  label(m.group(), labels).lower() if "__" in m.group() else m.group()),
                  title)
    what = what.strip().rstrip(".") or "The result"
    what = what[:1].upper() + what[1:]
    what += window_phrase(window)
    if not t.rows:
        return f"{what}: no rows matched."
    cols = list(range(len(t.columns)))
    name = [said[c].lower() for c in table.columns]
    unit = [units.get(c) for c in table.columns]
    numeric = [i for i in cols if all(_is_number(r[i]) for r in t.rows if r[i] is not None)
               and any(r[i] is not None for r in t.rows)]
    others = [i for i in cols if i not in numeric]
    times = [i for i in others if grain_of(table.columns[i])]
    if n == 1 and len(t.columns) == 1:
        return f"{what}: {name[0]} {with_unit(t.rows[0][0], unit[0])}."
    if numeric and others:
        m = numeric[0]
        valued = [r for r in t.rows if r[m] is not None]
        if times and valued:
            x = times[0]
            first, last = valued[0], valued[-1]
            series = {tuple(r[i] for i in others if i != x) for r in valued}
            if len(others) == 1:
                return (f"{what}: {len(valued):,} {_plural(name[x])} from {first[x]} to {last[x]}; "
                        f"{name[m]} {with_unit(last[m], unit[m])} in {last[x]}.")
            return f"{what}: {len(series):,} series from {first[x]} to {last[x]}."
        if valued:
            top = max(valued, key=lambda r: r[m])
            who = " ".join(str(top[i]) for i in others)
            among = f"{n:,} {_plural(name[others[0]])}" if len(others) == 1 else f"{n:,} rows"
            return f"{what}: {who} leads with {with_unit(top[m], unit[m])} {name[m]} ({among})."
    if n == 1:
        return f"{what}: " + ", ".join(f"{c} {with_unit(v, u)}" for c, v, u in zip(t.columns, t.rows[0], unit)) + "."
    return f"{what}: {n:,} rows."


def semantic_labels(manifest: Any) -> dict[str, str]:
    """Labels the semantic layer gives metrics, measures and dimensions, by name."""
    found: dict[str, str] = {}
    for model in manifest.semantic_models:
        for item in [*model.dimensions, *model.measures]:
            if item.label:
                found[item.name] = item.label
    for metric in manifest.metrics:
        if metric.label:
            found[metric.name] = metric.label
    return found


def semantic_units(manifest: Any) -> dict[str, str]:
    """Each metric's unit, by name, where the semantic layer gives one (currencies by code, shares as "percent")."""
    return {m.name: m.unit for m in manifest.metrics if m.unit}

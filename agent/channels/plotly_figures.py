"""Plotly figures (as plain JSON) for the charts the agent proposes: a line over time, bars over categories.

Builds the figure dictionary that plotly.js draws, from a `ChartSpec` and the table it refers to; it never
chooses what to chart (`agent/charts.py` does) and needs no plotting package on the server.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for hints: the chat UI imports this before the agent has loaded
    from agent.events import ChartSpec
    from agent.state import TableData

MAX_POINTS = 5000  # points drawn per chart; a longer result is charted by its first rows


def figure(chart: ChartSpec, table: TableData) -> dict[str, Any]:
    """`{"data": [...traces], "layout": {...}}` for plotly.js; one trace per measure, or per colour value."""
    idx = {c: i for i, c in enumerate(table.columns)}
    missing = [c for c in [chart.x, *chart.y, *([chart.color] if chart.color else [])] if c not in idx]
    if missing:
        raise ValueError(f"the chart names columns the table does not have: {', '.join(missing)}")
    rows = table.rows[:MAX_POINTS]
    trace_type = "scatter" if chart.kind == "line" else "bar"
    mode = {"mode": "lines+markers"} if chart.kind == "line" else {}
    traces: list[dict[str, Any]] = []
    if chart.color:
        y = chart.y[0]
        groups: dict[str, tuple[list[Any], list[Any]]] = {}
        for r in rows:
            xs, ys = groups.setdefault(str(r[idx[chart.color]]), ([], []))
            xs.append(r[idx[chart.x]])
            ys.append(r[idx[y]])
        traces = [{"type": trace_type, "name": name, "x": xs, "y": ys, **mode} for name, (xs, ys) in groups.items()]
    else:
        xs = [r[idx[chart.x]] for r in rows]
        traces = [{"type": trace_type, "name": y, "x": xs, "y": [r[idx[y]] for r in rows], **mode} for y in chart.y]
    layout: dict[str, Any] = {
        "title": {"text": chart.title}, "autosize": True, "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
        "xaxis": {"title": {"text": chart.x}, **({"type": "date"} if chart.kind == "line" else {"type": "category"})},
        "yaxis": {"title": {"text": chart.y[0] if len(chart.y) == 1 else ""}},
        "showlegend": len(traces) > 1,
    }
    if chart.kind == "bar" and len(traces) > 1:
        layout["barmode"] = "group"
    return {"data": traces, "layout": layout}

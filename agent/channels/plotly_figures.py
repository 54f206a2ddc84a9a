"""Plotly figures (as plain JSON) for the charts the agent proposes: a line over time, bars over categories.

Builds the figure dictionary that plotly.js draws, from a `ChartSpec` and the table it refers to; it never
chooses what to chart (`agent/charts.py` does) and needs no plotting package on the server.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.result_text import label, presented

if TYPE_CHECKING:  # only for hints: the chat UI imports this before the agent has loaded
    from agent.events import ChartSpec
    from agent.state import TableData

MAX_POINTS = 5000  # points drawn per chart; a longer result is charted by its first rows


def figure(chart: ChartSpec, table: TableData, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """`{"data": [...traces], "layout": {...}}` for plotly.js; one trace per measure, or per colour value; axes
    labelled, dates at their grain, with buttons that switch between bar, line and (one series) pie."""
    idx = {c: i for i, c in enumerate(table.columns)}
    missing = [c for c in [chart.x, *chart.y, *([chart.color] if chart.color else [])] if c not in idx]
    if missing:
        raise ValueError(f"the chart names columns the table does not have: {', '.join(missing)}")
    rows = presented(table.model_copy(update={"rows": table.rows[:MAX_POINTS]}), labels).rows
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
        traces = [{"type": trace_type, "name": label(y, labels), "x": xs, "y": [r[idx[y]] for r in rows], **mode}
                  for y in chart.y]
    x_title, y_title = label(chart.x, labels), label(chart.y[0], labels) if len(chart.y) == 1 else ""
    title = " and ".join(label(y, labels) for y in chart.y) + f" by {x_title.lower()}"
    if chart.color:
        title += f" and {label(chart.color, labels).lower()}"
    layout: dict[str, Any] = {
        "title": {"text": title}, "autosize": True, "margin": {"l": 70, "r": 20, "t": 80, "b": 60},
        "xaxis": {"title": {"text": x_title}, "type": "category", "automargin": True},  # dates at their grain
        "yaxis": {"title": {"text": y_title}, "separatethousands": True},
        "showlegend": len(traces) > 1,
        # Under the plot, so the toolbar at the top right never covers it.
        "legend": {"orientation": "h", "x": 0, "y": -0.35 if chart.kind == "line" else -0.2, "yanchor": "top"},
        "updatemenus": [_switch(chart.kind, traces)],
    }
    if len(chart.y) == 2 and not chart.color:  # two measures, two scales: the second on a right-hand axis
        traces[1]["yaxis"] = "y2"
        layout["yaxis"]["title"]["text"] = label(chart.y[0], labels)
        layout["yaxis2"] = {"title": {"text": label(chart.y[1], labels)}, "overlaying": "y", "side": "right",
                            "separatethousands": True}
    if len(traces) > 1:
        layout["barmode"] = "group"
    return {"data": traces, "layout": layout}


def _switch(kind: str, traces: list[dict[str, Any]]) -> dict[str, Any]:
    """Buttons that redraw the same data as bars, lines or (a single series) a pie."""
    n = len(traces)
    bar = {"type": ["bar"] * n, "mode": [None] * n}
    line = {"type": ["scatter"] * n, "mode": ["lines+markers"] * n}
    buttons = [{"label": "Bar", "method": "restyle", "args": [bar]},
               {"label": "Line", "method": "restyle", "args": [line]}]
    if n == 1:
        pie = {"type": ["pie"], "labels": [traces[0]["x"]], "values": [traces[0]["y"]]}
        buttons.append({"label": "Pie", "method": "restyle", "args": [pie]})
    return {"type": "buttons", "direction": "right", "x": 0, "y": 1.18, "xanchor": "left", "yanchor": "top",
            "showactive": True, "active": 0 if kind == "bar" else 1, "buttons": buttons}

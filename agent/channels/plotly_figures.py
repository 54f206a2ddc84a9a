"""Plotly figures (as plain JSON) for the charts the agent proposes: a line over time, bars over categories.

Builds the figure dictionary that plotly.js draws, from a `ChartSpec` and the table it refers to; it never
chooses what to chart (`agent/charts.py` does) and needs no plotting package on the server. Backgrounds are
transparent and text a mid grey, so a chart reads on the UI's light and dark themes alike.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.result_text import is_percent, label, presented, readable, unit_label

if TYPE_CHECKING:  # only for hints: the chat UI imports this before the agent has loaded
    from agent.events import ChartSpec
    from agent.state import TableData

MAX_POINTS = 5000  # points drawn per chart; a longer result is charted by its first rows
MAX_BARS = 20  # categories on a bar chart; a longer list is charted by its top rows
MAX_SERIES = 8  # lines or bar colours; more are charted by the largest
SCALE_RATIO = 3.0  # measures whose largest values differ more than this get an axis each
INK = "#808080"  # mid grey: contrast enough on white and on the dark theme's near-black
FAINT = "rgba(128,128,128,0.25)"
CONFIG = {"displaylogo": False, "responsive": True,
          "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d", "toggleSpikelines",
                                     "hoverClosestCartesian", "hoverCompareCartesian"]}


def _cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


def largest(rows: list[list[Any]], key: int, measure: int, keep: int) -> tuple[list[Any], int]:
    """The `keep` values of column `key` with the largest total of column `measure`, largest first; and how many
    values there were."""
    totals: dict[Any, float] = {}
    for r in rows:
        v = r[measure]
        totals[r[key]] = totals.get(r[key], 0.0) + (float(v) if isinstance(v, (int, float)) else 0.0)
    return sorted(totals, key=lambda k: -totals[k])[:keep], len(totals)


def _axes(chart: ChartSpec, rows: list[list[Any]], idx: dict[str, int]) -> list[str]:
    """"y" or "y2" for each measure: those within `SCALE_RATIO` of the first measure's size share its axis."""
    size = [max((abs(r[idx[y]]) for r in rows if isinstance(r[idx[y]], (int, float))), default=0.0) or 1.0
            for y in chart.y]
    return ["y" if max(s, size[0]) / min(s, size[0]) <= SCALE_RATIO else "y2" for s in size]


def chart_title(chart: ChartSpec, labels: dict[str, str] | None = None) -> str:
    """What a chart shows, in labels: "Revenue by region", "Revenue by month and region"."""
    title = " and ".join(label(y, labels) for y in chart.y) + f" by {label(chart.x, labels).lower()}"
    return title + (f" and {label(chart.color, labels).lower()}" if chart.color else "")


def figure(chart: ChartSpec, table: TableData, labels: dict[str, str] | None = None,
           units: dict[str, str] | None = None) -> dict[str, Any]:
    """`{"data": [...traces], "layout": {...}, "config": {...}}` for plotly.js; one trace per measure, or per colour
    value; axes labelled with their units, dates at their grain, with buttons that switch between a table, bars,
    lines and (for parts of a whole) a pie."""
    units = units or {}

    def titled(y: str) -> str:
        return unit_label(label(y, labels), units.get(y))

    idx = {c: i for i, c in enumerate(table.columns)}
    missing = [c for c in [chart.x, *chart.y, *([chart.color] if chart.color else [])] if c not in idx]
    if missing:
        raise ValueError(f"the chart names columns the table does not have: {', '.join(missing)}")
    shown = presented(table.model_copy(update={"rows": table.rows[:MAX_POINTS]}), labels)
    rows = shown.rows
    trace_type = "scatter" if chart.kind == "line" else "bar"
    mode = {"mode": "lines+markers"} if chart.kind == "line" else {}
    cut = ""
    if chart.kind == "bar":  # a long list: its top rows, largest first
        keep, among = largest(rows, idx[chart.x], idx[chart.y[0]], MAX_BARS)
        if among > MAX_BARS:
            order = {k: i for i, k in enumerate(keep)}
            rows = sorted((r for r in rows if r[idx[chart.x]] in order), key=lambda r: order[r[idx[chart.x]]])
            cut = f" (top {MAX_BARS} of {among:,} {label(chart.x, labels).lower()}s)"
    traces: list[dict[str, Any]] = []
    if chart.color:
        y = chart.y[0]
        series, among = largest(rows, idx[chart.color], idx[y], MAX_SERIES)
        if among > MAX_SERIES:
            cut += f" (top {MAX_SERIES} of {among:,} {label(chart.color, labels).lower()}s)"
        kept = set(series)
        groups: dict[Any, tuple[list[Any], list[Any]]] = {}
        for r in rows:
            if r[idx[chart.color]] in kept:
                groups.setdefault(r[idx[chart.color]], ([], []))
                xs, ys = groups[r[idx[chart.color]]]
                xs.append(r[idx[chart.x]])
                ys.append(r[idx[y]])
        traces = [{"type": trace_type, "name": str(name), "x": xs, "y": ys, **mode}
                  for name, (xs, ys) in groups.items()]
    else:
        xs = [r[idx[chart.x]] for r in rows]
        traces = [{"type": trace_type, "name": label(y, labels), "x": xs, "y": [r[idx[y]] for r in rows], **mode}
                  for y in chart.y]
    for t, y in zip(traces, [chart.y[0]] * len(traces) if chart.color else chart.y):  # hovers read "12.5%"
        if is_percent(units.get(y)):
            t["yhoverformat"] = ".1%"
    # What the Table button shows rides on the first trace (ignored while it is drawn as bars or lines).
    read = readable(table.model_copy(update={"rows": table.rows[:MAX_POINTS]}), labels, units)
    traces[0]["header"] = {"values": read.columns, "fill": {"color": FAINT}, "line": {"color": FAINT},
                           "font": {"color": INK}, "align": "left"}
    traces[0]["cells"] = {"values": [[_cell(r[i]) for r in read.rows] for i in range(len(read.columns))],
                          "fill": {"color": "rgba(0,0,0,0)"}, "line": {"color": FAINT}, "font": {"color": INK},
                          "align": "left"}
    x_title = label(chart.x, labels)
    y_title = titled(chart.y[0]) if len(chart.y) == 1 else ""
    title = chart_title(chart, labels)
    axis = {"gridcolor": FAINT, "zerolinecolor": FAINT, "linecolor": FAINT, "automargin": True}
    layout: dict[str, Any] = {
        # Over the switch's buttons, from the plot's left edge, so a long title never runs into them.
        "title": {"text": title + cut, "x": 0, "xref": "paper", "xanchor": "left", "y": 0.97, "yanchor": "top"},
        "autosize": True, "margin": {"l": 70, "r": 20, "t": 80, "b": 60},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "font": {"color": INK},
        "modebar": {"bgcolor": "rgba(0,0,0,0)", "color": INK, "activecolor": INK},
        "xaxis": {**axis, "title": {"text": x_title}, "type": "category"},  # dates at their grain
        "yaxis": {**axis, "title": {"text": y_title}, "separatethousands": True},
        "showlegend": len(traces) > 1,
        # Under the plot, so the toolbar at the top right never covers it.
        "legend": {"orientation": "h", "x": 0, "y": -0.35 if chart.kind == "line" else -0.2, "yanchor": "top"},
    }
    sides = _axes(chart, rows, idx) if not chart.color else ["y"]
    if "y2" in sides:  # two scales: the larger measures on the left, the others on a right-hand axis
        for t, side in zip(traces, sides):
            t["yaxis"] = side
        layout["yaxis"]["title"]["text"] = ", ".join(titled(y) for y, s in zip(chart.y, sides) if s == "y")
        layout["yaxis2"] = {**axis, "title": {"text": ", ".join(titled(y) for y, s in zip(chart.y, sides)
                                                                 if s == "y2")},
                            "overlaying": "y", "side": "right", "separatethousands": True, "showgrid": False}
        layout["margin"]["r"] = 70
    for axis_name, side in (("yaxis", "y"), ("yaxis2", "y2")):  # ticks of shares read "12.5%"
        on_it = [y for y, s in zip(chart.y, sides) if s == side]
        if axis_name in layout and on_it and all(is_percent(units.get(y)) for y in on_it):
            layout[axis_name]["tickformat"] = ".1%"
    if len(traces) > 1:
        layout["barmode"] = "group"
        for i, t in enumerate(traces):
            t["offsetgroup"] = str(i)  # bars on two axes stand side by side, not over each other
    layout["updatemenus"] = [_switch(chart.kind, traces, pie=chart.pie and not cut)]
    return {"data": traces, "layout": layout, "config": CONFIG}


def _switch(kind: str, traces: list[dict[str, Any]], pie: bool) -> dict[str, Any]:
    """Buttons that show the rows as a table, or redraw them as bars, lines or (parts of a whole) a pie."""
    n = len(traces)
    others = [t["type"] for t in traces[1:]]
    axes = {"xaxis.visible": True, "yaxis.visible": True, "showlegend": n > 1}
    if any("yaxis" in t for t in traces):
        axes["yaxis2.visible"] = True
    hidden = {k: False for k in axes}
    everything = {"visible": [True] * n}
    bar = {**everything, "type": ["bar"] * n, "mode": [None] * n}
    line = {**everything, "type": ["scatter"] * n, "mode": ["lines+markers"] * n}
    table = {"visible": [True] + [False] * (n - 1), "type": ["table", *others]}
    buttons = [{"label": "Table", "method": "update", "args": [table, hidden]},
               {"label": "Bar", "method": "update", "args": [bar, axes]},
               {"label": "Line", "method": "update", "args": [line, axes]}]
    if n == 1 and pie:
        slices = {**everything, "type": ["pie"], "labels": [traces[0]["x"]], "values": [traces[0]["y"]]}
        buttons.append({"label": "Pie", "method": "update", "args": [slices, {**hidden, "showlegend": True}]})
    return {"type": "buttons", "direction": "right", "x": 0, "y": 1.16, "xanchor": "left", "yanchor": "top",
            "showactive": True, "active": 1 if kind == "bar" else 2, "buttons": buttons,
            "bgcolor": "rgba(128,128,128,0.22)", "bordercolor": FAINT, "font": {"color": INK}}

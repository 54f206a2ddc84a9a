"""A chart the agent proposed, drawn as a PNG (matplotlib, no display) for channels that show images, not
interactive figures: Slack. A line over time or bars over categories, a series per category when the chart has one.
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.events import ChartSpec
    from agent.state import TableData


def chart_png(chart: ChartSpec, table: TableData) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agent.channels.plotly_figures import MAX_BARS, MAX_SERIES, largest

    col = {c: i for i, c in enumerate(table.columns)}
    rows = table.rows
    top, among = largest(rows, col[chart.x], col[chart.y[0]], MAX_BARS)
    if chart.kind == "bar" and among > MAX_BARS:  # a long list: its top rows, largest first, as the chat UI draws it
        keep = {k: i for i, k in enumerate(top)}
        rows = sorted((r for r in rows if r[col[chart.x]] in keep), key=lambda r: keep[r[col[chart.x]]])
    if chart.color in col:
        series = set(largest(rows, col[chart.color], col[chart.y[0]], MAX_SERIES)[0])
        rows = [r for r in rows if r[col[chart.color]] in series]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    try:
        groups: dict[str, list[list]] = {}
        for row in rows:
            key = str(row[col[chart.color]]) if chart.color in col else ""
            groups.setdefault(key, []).append(row)
        for key, rows in groups.items():
            xs = [str(r[col[chart.x]]) for r in rows]
            for y in chart.y:
                ys = [float(r[col[y]]) if r[col[y]] is not None else float("nan") for r in rows]
                label = " ".join(x for x in (key, y if len(chart.y) > 1 or not key else "") if x)
                (ax.plot(xs, ys, marker="o", label=label or y) if chart.kind == "line"
                 else ax.bar(xs, ys, label=label or y))
        ax.set_xlabel(chart.x)
        if len(groups) > 1 or len(chart.y) > 1:
            ax.legend(fontsize="small")
        ax.set_title(chart.title)
        fig.autofmt_xdate()
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)

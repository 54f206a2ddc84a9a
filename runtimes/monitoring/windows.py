"""Captured traffic of one endpoint over a time window, read from the warehouse, and its features.

Reads `endpoint_traffic` on the sandboxed reader only; it never writes.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from core.workspace import Workspace
from runtimes.monitoring.features import Topics, compute_features
from runtimes.monitoring.traffic import TRAFFIC_TABLE


def load_traffic(ws: Workspace, endpoint: str, start: dt.datetime, end: dt.datetime) -> Any:
    """Captured requests of `endpoint` with start ≤ ts < end (UTC), oldest first, as a DataFrame."""
    import pandas as pd

    from catalog.warehouse import connect_reader

    columns = ["request_id", "endpoint", "model", "ts", "route", "prompt", "response", "prompt_tokens",
               "completion_tokens", "latency_ms", "status", "group"]
    with connect_reader(ws) as con:
        known = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if TRAFFIC_TABLE not in known:
            return pd.DataFrame({c: [] for c in columns})
        cols = ", ".join(f'"{c}"' for c in columns)
        return con.execute(f'SELECT {cols} FROM "{TRAFFIC_TABLE}" WHERE endpoint = ? AND ts >= ? AND ts < ? '
                           "ORDER BY ts, request_id", [endpoint, _naive(start), _naive(end)]).df()


def traffic_features(traffic: Any, topics: Topics, **judge: Any) -> Any:
    """Features of captured requests that were answered (status below 400); errors are counted elsewhere."""
    ok = traffic[traffic["status"] < 400]
    frame = compute_features(list(ok["prompt"]), list(ok["response"]), topics=topics,
                             latency_ms=list(ok["latency_ms"]), prompt_tokens=list(ok["prompt_tokens"]),
                             completion_tokens=list(ok["completion_tokens"]), **judge)
    frame.insert(0, "request_id", list(ok["request_id"]))
    frame["group"] = list(ok["group"])
    return frame


def _naive(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(dt.timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


def load_feedback(ws: Workspace, endpoint: str, start: dt.datetime, end: dt.datetime) -> Any:
    """The latest feedback for each request of `endpoint` in the window (empty when none has arrived)."""
    import pandas as pd

    from catalog.warehouse import connect_reader
    from runtimes.monitoring.traffic import FEEDBACK_TABLE

    columns = ["request_id", "label", "score", "correct", "feedback_group"]
    with connect_reader(ws) as con:
        known = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if not {TRAFFIC_TABLE, FEEDBACK_TABLE} <= known:
            return pd.DataFrame({c: [] for c in columns})
        return con.execute(
            f'SELECT f.request_id, f.label, f.score, f.correct, f."group" AS feedback_group '
            f'FROM "{FEEDBACK_TABLE}" f JOIN "{TRAFFIC_TABLE}" t ON t.request_id = f.request_id '
            "WHERE t.endpoint = ? AND t.ts >= ? AND t.ts < ? "
            "QUALIFY row_number() OVER (PARTITION BY f.request_id ORDER BY f.ts DESC, f.feedback_id DESC) = 1 "
            "ORDER BY f.request_id", [endpoint, _naive(start), _naive(end)]).df()

"""A workspace for the feature store tests: a `signals` table of scored events per customer, written by the tests
row by row, and feature view YAML written into its catalog. Holds no tests."""
from __future__ import annotations

import datetime as dt
import textwrap

from catalog.warehouse import connect_writer
from core.workspace import Workspace

T0 = dt.datetime(2025, 1, 1)

SIGNALS_VIEW = """
feature_views:
  - name: signals
    owner: risk
    description: the latest score of each customer
    entity: {{name: customer, join_key: customer_id}}
    source: {{table: signals}}
    event_time: seen_at
    {ttl}
    features:
      - {{name: score, type: float64, description: the latest risk score}}
      - {{name: band, type: string, description: the score's band}}
"""


def at(days: float = 0, seconds: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, seconds=seconds)


def make_signals(ws: Workspace, rows: list[tuple[int, dt.datetime, float]]) -> None:
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE IF NOT EXISTS signals (customer_id INTEGER, seen_at TIMESTAMP, score DOUBLE, band VARCHAR)")
        con.executemany("INSERT INTO signals VALUES (?, ?, ?, ?)",
                        [[cid, ts, score, "high" if score >= 50 else "low"] for cid, ts, score in rows])


def write_view(ws: Workspace, text: str, name: str = "views.yml"):
    d = ws.catalog_dir / "features"
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def signals_view(ws: Workspace, ttl: str | None = None):
    return write_view(ws, SIGNALS_VIEW.format(ttl=f"ttl: {ttl}" if ttl else ""))

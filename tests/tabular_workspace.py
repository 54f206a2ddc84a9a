"""A workspace for the tabular training tests: monthly `activity` snapshots per customer (orders and spend over
the last 90 days) and `churn_labels` (did the customer leave the month after, their segment, what they spent the month after), where customers
with few recent orders mostly churn; and a feature view over the snapshots. Holds no tests."""
from __future__ import annotations

import datetime as dt
import random

from catalog.warehouse import connect_writer
from core.workspace import Workspace
from tests.features_workspace import write_view

T0 = dt.datetime(2025, 1, 1)

ACTIVITY_VIEW = """
feature_views:
  - name: activity
    owner: growth
    description: each customer's recent orders
    entity: {name: customer, join_key: customer_id}
    source: {table: activity}
    event_time: as_of
    features:
      - {name: orders_90d, type: int64, description: orders in the last 90 days}
      - {name: spend_90d, type: float64, description: spend in the last 90 days}
"""


def build_churn_workspace(ws: Workspace, customers: int = 150, months: int = 6, seed: int = 3) -> None:
    rng = random.Random(seed)
    activity, labels = [], []
    for cid in range(1, customers + 1):
        rate = rng.choice([0.5, 1.5, 4.0, 8.0])
        segment = rng.choice(["retail", "pro"])
        for m in range(months):
            at = T0 + dt.timedelta(days=30 * m)
            orders = sum(rng.random() < rate / 10 for _ in range(10))
            activity.append((cid, at, orders, round(orders * rng.uniform(20, 80), 2)))
            churned = rng.random() < (0.85 if orders <= 1 else 0.1)
            next_spend = round(max(0.0, orders * 30 + (40 if segment == "pro" else 0) + rng.gauss(0, 10)), 2)
            labels.append((cid, at + dt.timedelta(days=1), int(churned), segment, next_spend))
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE activity (customer_id INTEGER, as_of TIMESTAMP, orders_90d BIGINT, spend_90d DOUBLE)")
        con.executemany("INSERT INTO activity VALUES (?, ?, ?, ?)", activity)
        con.execute("CREATE TABLE churn_labels (customer_id INTEGER, label_at TIMESTAMP, churned INTEGER, "
                    "segment VARCHAR, next_spend DOUBLE)")
        con.executemany("INSERT INTO churn_labels VALUES (?, ?, ?, ?, ?)", labels)
    write_view(ws, ACTIVITY_VIEW)
    from runtimes.features.registry import apply

    apply(ws)


def churn_spec(**over) -> dict:
    spec = {"label": {"source": "churn_labels", "column": "churned", "entity": "customer_id", "time": "label_at"},
            "features": ["activity"], "columns": ["segment"], "trials": 4}
    spec.update(over)
    return spec

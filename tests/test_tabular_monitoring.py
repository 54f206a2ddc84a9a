"""Monitors of a table model's endpoint: rows served like the training set raise nothing; shifted rows raise
feature, prediction and dataset drift against the training set, bias drift between customer segments, and a
quality alert once labels arrive (joined on the customer and the time it was scored), through the monitor's rules
and the alert store. Traffic is served by the endpoint's app in-process and captured as a deployed one captures."""
from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from catalog.warehouse import connect_writer
from core.errors import UserError
from runtimes.monitoring.monitor_store import MonitorStore
from runtimes.monitoring.monitors import Rule, create_monitor, run_monitor
from runtimes.serving.endpoints.openai_api import EndpointSettings
from runtimes.serving.endpoints.tabular_app import create_app
from runtimes.tabular.scoring import load_version
from tests.tabular_models import NAME, churn_workspace

pytestmark = pytest.mark.slow
RULES = ["dataset_drift", "drift:orders_90d", "prediction_drift", "bias:segment>0.2", "accuracy<0.7"]


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    ws, frame = churn_workspace(tmp_path_factory)
    model = load_version(ws, NAME)
    steady = frame[["customer_id", "segment", "orders_90d", "spend_90d"]]  # the training rows themselves
    served = {}
    for endpoint, rows in (("steady", steady.to_dict("records")), ("shifted", _shifted(steady))):
        client = TestClient(create_app(model, EndpointSettings(name=endpoint, workspace=ws)))
        rows = [{k: (int(v) if k in ("customer_id", "orders_90d") else v) for k, v in r.items()} for r in rows]
        for at in range(0, len(rows), 40):
            r = client.post("/invocations", json={"dataframe_records": rows[at:at + 40]})
            assert r.status_code == 200, r.text
        served[endpoint] = rows
    # Outcomes known an hour later: the steady customers' as predicted-ish (their training labels), the shifted
    # ones the opposite of what the model says.
    later = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(hours=1)
    shifted_pred, _ = model.predict(model.frame(served["shifted"]))
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE outcomes (customer_id INTEGER, known_at TIMESTAMP, churned INTEGER)")
        con.executemany("INSERT INTO outcomes VALUES (?, ?, ?)",
                        [(r["customer_id"], later, 1 - p) for r, p in zip(served["shifted"], shifted_pred)])
    return ws, model


def _shifted(rows):
    """Other customers: retail ones who stopped ordering, pro ones who order a lot: inputs unlike the training set
    and a prediction that now splits by segment."""
    out = []
    for i, r in enumerate(rows.head(80).to_dict("records")):
        segment = "retail" if i % 2 else "pro"
        orders = 0 if segment == "retail" else 9
        out.append({**r, "customer_id": 1000 + i, "segment": segment, "orders_90d": orders,
                    "spend_90d": orders * 95.0})
    return out


def monitor(ws, endpoint, rules=RULES, **over):
    spec = {"kind": "tabular", "name": f"{endpoint}-watch", "endpoint": endpoint, "model": f"{NAME}@1",
            "rules": [Rule.parse(r).model_dump() for r in rules], "sensitive": ["segment"],
            "labels": {"source": "outcomes", "entity": "customer_id", "time": "known_at", "column": "churned"},
            **over}
    row = create_monitor(ws, spec)
    return run_monitor(ws, row.id, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))


def test_rows_like_the_training_set_raise_nothing(watched):
    ws, model = watched
    run = monitor(ws, "steady")
    assert run.status == "ok", run.describe()
    s = run.summary
    assert s["current_rows"] == s["reference"]["rows"] == 240 and s["reference"]["kind"] == "training"
    assert set(s["features"]["tested"]) == {"segment", "orders_90d", "spend_90d", "prediction", "score"}
    assert s["drift"]["drifted_columns"] == []
    assert s["quality"]["labelled"] == 0  # no outcomes for these customers yet


def test_shifted_rows_raise_drift_bias_and_quality_alerts(watched):
    ws, model = watched
    run = monitor(ws, "shifted")
    assert run.status == "alert"
    rules = {a.rule for a in run.alerts}
    assert rules == {"dataset drift", "drift of orders_90d", "drift of prediction", "bias drift by segment",
                     "accuracy below 0.7"}, run.describe()
    q = run.summary["quality"]
    assert q["labelled"] == 80 and q["accuracy"] == 0.0
    bias = run.summary["bias"]["segment"]
    assert bias["current"]["retail"] > 0.9 and bias["current"]["pro"] < 0.1
    message = next(a.message for a in run.alerts if a.rule == "bias drift by segment")
    assert "retail" in message and "pro" in message
    stored = {a.rule for a in MonitorStore(ws).alerts(endpoint="shifted")}
    assert stored == rules


@pytest.mark.parametrize("over, words", [
    ({"rules": [{"kind": "feature_drift", "feature": "tenure"}]}, ["`tenure`", "orders_90d"]),
    ({"rules": [{"kind": "bias_drift", "feature": "region"}]}, ["region", "sensitive"]),
    ({"labels": None, "rules": [{"kind": "quality_below", "metric": "accuracy", "value": 0.5}]}, ["labels"]),
    ({"model": "nope@1"}, ["nope"]),
    ({"rules": [{"kind": "data_quality"}]}, ["error_rate"]),
])
def test_a_monitor_that_cannot_work_is_refused_when_made(watched, over, words):
    ws, model = watched
    spec = {"kind": "tabular", "name": "bad", "endpoint": "steady", "model": f"{NAME}@1", "sensitive": ["segment"],
            "labels": {"source": "outcomes", "entity": "customer_id", "time": "known_at", "column": "churned"},
            **over}
    with pytest.raises(UserError) as e:
        create_monitor(ws, spec)
    for w in words:
        assert w in str(e.value)

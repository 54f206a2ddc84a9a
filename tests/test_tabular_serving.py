"""A table model deployed to a real endpoint process on loopback: `/invocations` answers records and DataFrame
splits as MLflow's scoring server does, behind the endpoint's key; rows carrying only the entity key get their
features from the online store; a bad record gets a 400 naming its row and column; answered rows are captured
for monitoring."""
from __future__ import annotations

import httpx
import pytest

from runtimes.serving.endpoints import deploy as endpoints
from runtimes.tabular.scoring import load_version
from tests.tabular_models import NAME, churn_workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ws, frame = churn_workspace(tmp_path_factory)
    d = endpoints.deploy(ws, [NAME], name="churn", start_timeout_s=120)
    try:
        yield ws, frame, d
    finally:
        endpoints.delete(ws, "churn")


def post(d, body, key=True):
    headers = {"Authorization": f"Bearer {d.api_key}"} if key else {}
    return httpx.post(f"{d.endpoint.base_url}/invocations", json=body, headers=headers, timeout=30)


def test_records_and_a_split_get_the_models_own_predictions(served):
    ws, frame, d = served
    rows = frame[["customer_id", "segment", "orders_90d", "spend_90d"]].head(6)
    records = [{**r, "customer_id": int(r["customer_id"]), "orders_90d": int(r["orders_90d"])}
               for r in rows.to_dict("records")]
    model = load_version(ws, NAME)
    expected, _ = model.predict(model.frame(records))
    assert set(expected) == {0, 1}  # the rows tell the classes apart
    a = post(d, {"dataframe_records": records})
    assert a.status_code == 200, a.text
    assert a.json() == {"predictions": expected}
    split = {"columns": list(records[0]), "data": [list(r.values()) for r in records]}
    b = post(d, {"dataframe_split": split})
    assert b.status_code == 200 and b.json() == {"predictions": expected}
    proba = post(d, {"dataframe_records": records[:2], "params": {"predict_method": "predict_proba"}}).json()
    assert [sorted(p) for p in proba["predictions"]] == [["0", "1"], ["0", "1"]]
    assert all(abs(sum(p.values()) - 1) < 1e-9 for p in proba["predictions"])


def test_entity_keys_read_the_online_features(served):
    ws, frame, d = served
    from runtimes.features.online_features import get_online_features

    model = load_version(ws, NAME)
    online = get_online_features(ws, ["activity"], [3, 7])
    segments = {3: frame.loc[frame.customer_id == 3, "segment"].iloc[0],
                7: frame.loc[frame.customer_id == 7, "segment"].iloc[0]}
    expected, _ = model.predict(model.frame([{**online[0], "segment": segments[3]},
                                             {**online[1], "segment": segments[7]}]))
    # The key and the one feature the view does not hold: the rest comes from the online store.
    a = post(d, {"dataframe_records": [{"customer_id": 3, "segment": segments[3]},
                                       {"customer_id": 7, "segment": segments[7]}]})
    assert a.status_code == 200, a.text
    assert a.json()["predictions"] == expected
    # A value sent with the request wins over the stored one.
    given = post(d, {"dataframe_records": [{"customer_id": 3, "segment": segments[3], "orders_90d": 40,
                                            "spend_90d": 3000.0}]}).json()["predictions"]
    assert given == model.predict(model.frame([{"segment": segments[3], "orders_90d": 40, "spend_90d": 3000.0}]))[0]
    unknown = post(d, {"dataframe_records": [{"customer_id": 3, "segment": "pro"}, {"customer_id": 99999,
                                                                                   "segment": "pro"}]})
    assert unknown.status_code == 400
    assert "row 1" in unknown.json()["message"] and "99999" in unknown.json()["message"]


@pytest.mark.parametrize("body, words", [
    ({"dataframe_records": [{"segment": "pro", "orders_90d": 2, "spend_90d": 10.0},
                            {"segment": "pro", "orders_90d": 2}]}, ["row 1", "`spend_90d`", "missing", "number"]),
    ({"dataframe_records": [{"segment": "pro", "orders_90d": "many", "spend_90d": 10.0}]},
     ["row 0", "`orders_90d`", "'many'", "finite number"]),
    ({"dataframe_split": {"columns": ["segment", "orders_90d", "spend_90d"],
                          "data": [["pro", 1, 2.0], ["gold", 1, 2.0]]}}, ["row 1", "`segment`", "'gold'", "'pro'"]),
    ({"dataframe_split": {"columns": ["segment", "orders_90d"], "data": [["pro", 1, 2.0]]}},
     ["row 0", "2 values"]),
    ({"instances": [[1, 2]]}, ["dataframe_records", "dataframe_split"]),
    ({"dataframe_records": [], "dataframe_split": {}}, ["exactly one"]),
])
def test_a_bad_request_gets_a_400_saying_where_and_what_fits(served, body, words):
    r = post(served[2], body)
    assert r.status_code == 400
    assert r.json()["error_code"] == "BAD_REQUEST"
    for w in words:
        assert w in r.json()["message"]


def test_the_key_is_required(served):
    ws, frame, d = served
    body = {"dataframe_records": [{"segment": "pro", "orders_90d": 2, "spend_90d": 10.0}]}
    assert post(d, body, key=False).status_code == 401
    wrong = httpx.post(f"{d.endpoint.base_url}/invocations", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert httpx.get(f"{d.endpoint.base_url}/health").json() == {"status": "ok"}
    local = endpoints.local_key(ws, "churn")
    health = httpx.get(f"{d.endpoint.base_url}/health", headers={"Authorization": f"Bearer {local}"}).json()
    assert health["kind"] == "tabular" and health["entity"] == "customer_id"
    from runtimes.serving.endpoints.client import lathe_status

    status = lathe_status(ws, "churn")
    assert status["status"] == "running" and status["models"] == [f"{NAME}@1"]
    assert httpx.get(f"{d.endpoint.base_url}/v1/lathe/status").status_code == 401


def test_answered_rows_and_refusals_are_captured(served):
    ws, frame, d = served
    from runtimes.monitoring.traffic import ingest
    from catalog.warehouse import connect_reader

    post(d, {"dataframe_records": [{"customer_id": 5, "segment": "retail"}]})
    post(d, {"dataframe_records": [{"segment": "pro"}]})
    ingest(ws)
    with connect_reader(ws) as con:
        rows = con.execute("SELECT route, status, metadata FROM endpoint_traffic WHERE endpoint = 'churn'").fetchall()
    assert {r[0] for r in rows} == {"invocations"}
    assert any(r[1] == 400 for r in rows)
    import json

    answered = [json.loads(r[2]) for r in rows if r[1] == 200]
    fetched = [m for m in answered if m["entity"] == 5 and set(m["inputs"]) >= {"orders_90d", "spend_90d"}]
    assert fetched and fetched[-1]["prediction"] in (0, 1) and 0 <= fetched[-1]["score"] <= 1


# ---- batch scoring over a catalog table (the job itself runs in test_tabular_e2e.py) ---------------------------
def test_a_row_that_does_not_fit_is_refused_before_a_scoring_job_exists(served):
    ws, frame, d = served
    from catalog.store import CatalogStore
    from core.errors import UserError
    from runtimes.jobs.store import JobStore
    from runtimes.tabular.table_scoring import plan_score

    sql = ("SELECT customer_id, CASE WHEN customer_id = 4 THEN 'gold' ELSE segment END AS segment, 1 AS orders_90d, "
           "2.5 AS spend_90d FROM churn_labels ORDER BY customer_id, label_at")
    with pytest.raises(UserError, match=r"row 9: column `segment` is 'gold'; expected one of 'pro', 'retail'"):
        plan_score(ws, {"model": NAME, "sql": sql, "into": "gold_scores"})
    with pytest.raises(UserError, match="`activity` already exists"):
        plan_score(ws, {"model": NAME, "sql": "SELECT customer_id, segment FROM churn_labels", "into": "activity"})
    with pytest.raises(UserError, match="prediction"):
        plan_score(ws, {"model": NAME, "sql": "SELECT customer_id, segment, 1 AS prediction FROM churn_labels"})
    plan = plan_score(ws, {"model": NAME, "sql": "SELECT customer_id, segment FROM churn_labels", "into": "s"})
    assert plan.rows == len(frame) and plan.model_id == f"{NAME}@1"  # features read online by the entity key
    assert JobStore(ws).list(kind="score") == [] and CatalogStore(ws).load().table("gold_scores") is None


# ---- the command line ---------------------------------------------------------------------------------------
def test_the_command_line_plans_scoring_a_table_and_watches_the_endpoint(served):
    ws, frame, d = served
    from typer.testing import CliRunner

    from catalog.store import CatalogStore
    from cli.main import app
    from runtimes.monitoring.monitor_store import MonitorStore

    def lathe(*args):
        return CliRunner().invoke(app, ["--workspace", str(ws.root), *args])

    sql = "SELECT DISTINCT customer_id, segment FROM churn_labels"
    r = lathe("batch", NAME, "--data", sql, "--into", "cli_scores", "--dry-run")
    assert r.exit_code == 0 and "dry run: nothing was started" in r.output, r.output
    assert "rows: 80 from query" in r.output and "model: `churn-lgbm@1`" in r.output
    assert CatalogStore(ws).load().table("cli_scores") is None
    r = lathe("monitors", "create", "churn-watch", "--endpoint", "churn", "--sensitive", "segment", "--rule",
              "bias:segment", "--rule", "accuracy<0.7", "--labels", "churn_labels", "--label-time", "label_at",
              "--label-column", "churned")
    assert r.exit_code == 0, r.output
    spec = MonitorStore(ws).get("churn-watch").spec
    assert spec["kind"] == "tabular" and spec["model"] == f"{NAME}@1" and spec["labels"]["entity"] == "customer_id"
    r = lathe("monitors", "create", "churn-no-time", "--endpoint", "churn", "--labels", "churn_labels")
    assert r.exit_code != 0 and "--label-time" in r.output

"""Training requests that cannot train are refused at submit with a one-line error saying what is wrong, and no job
is created: a missing column, a label with one class, a zero budget, a metric of the other task, and more."""
from __future__ import annotations

import pytest

from core.errors import UserError
from runtimes.jobs import lifecycle
from runtimes.jobs.store import JobStore
from tests.tabular_workspace import build_churn_workspace, churn_spec


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from core.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("tabular-refusals") / "ws")
    ws.create()
    build_churn_workspace(ws, customers=40, months=3)
    return ws


def refused(ws, spec) -> str:
    with pytest.raises(UserError) as e:
        lifecycle.submit(ws, "train", spec)
    assert JobStore(ws).list() == [], "a refused request left a job behind"
    message = str(e.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("label, where", [
    ({"column": "churnd"}, "the label column"),
    ({"entity": "customer"}, "the entity key"),
    ({"time": "labelled_at"}, "the label time"),
])
def test_a_missing_label_column_is_named_with_its_role_and_a_suggestion(ws, label, where):
    spec = churn_spec()
    spec["label"] = {**spec["label"], **label}
    message = refused(ws, spec)
    missing = next(iter(label.values()))
    assert f"no column `{missing}`" in message and where in message


def test_a_missing_feature_column_is_named(ws):
    assert "no column `segmnt`" in refused(ws, churn_spec(columns=["segmnt"]))


def test_an_unknown_feature_view_is_refused(ws):
    assert "activty" in refused(ws, churn_spec(features=["activty"]))


def test_a_label_with_one_class_is_refused(ws):
    message = refused(ws, churn_spec(label={"source": "SELECT * FROM churn_labels WHERE churned = 0",
                                            "column": "churned", "entity": "customer_id", "time": "label_at"}))
    assert "one class only (`0` in all" in message and "`churned`" in message


@pytest.mark.parametrize("budget, says", [({"trials": 0}, "at least 1 trial, not 0"),
                                          ({"trials": -3}, "at least 1 trial"),
                                          ({"minutes": 0}, "more than 0")])
def test_an_empty_budget_is_refused(ws, budget, says):
    assert says in refused(ws, churn_spec(**budget))


def test_a_metric_of_the_other_task_is_refused(ws):
    message = refused(ws, churn_spec(metric="rmse"))
    assert "does not score classification" in message and "roc_auc" in message


def test_regression_on_a_text_label_is_refused(ws):
    spec = churn_spec(task="regression", columns=[])
    spec["label"] = {**spec["label"], "column": "segment"}
    assert "regression needs numbers" in refused(ws, spec)


def test_feature_views_without_a_label_time_are_refused(ws):
    spec = churn_spec()
    del spec["label"]["time"]
    assert "label.time" in refused(ws, spec)


def test_no_features_at_all_is_refused(ws):
    assert "no features" in refused(ws, churn_spec(features=[], columns=[]))


def test_an_unknown_family_is_refused(ws):
    assert "family" in refused(ws, churn_spec(family="catboost"))


def test_a_write_as_the_label_source_is_refused(ws):
    refused(ws, churn_spec(label={"source": "DELETE FROM churn_labels", "column": "churned",
                                  "entity": "customer_id", "time": "label_at"}))
    from catalog.warehouse import connect_reader

    with connect_reader(ws) as con:
        assert con.execute("SELECT count(*) FROM churn_labels").fetchone()[0] == 120

""""Predict X" from the chat on the demo company, offline planner first: requests in several phrasings become a
proposed label (in words and SQL), features, split, model family, metric and budget, waiting for approval; a table
that does not exist gets a clear answer; an approved plan starts a real tiny `train` job followed to its report.
Then the LLM path through the scripted OpenAI-compatible server."""
from __future__ import annotations

import pytest

from agent.session import Session
from core.workspace import Workspace
from runtimes.jobs.store import JobStore
from tests.agent_events import collect, done, of, text_of
from tests.scripted_llm import call


@pytest.fixture(scope="module")
def demo(module_demo: Workspace) -> Workspace:
    return module_demo


def _proposed(ws: Workspace, thread: str, request: str):
    events = collect(Session(ws, thread).send(request))
    assert done(events).status == "waiting_approval", text_of(events)[-600:]
    step = of(events, "approval_needed")[0].plan.steps[0]
    assert (step.tool, step.risk.value) == ("start_training", "compute")
    assert of(events, "step_started") == []  # nothing runs before approval
    return text_of(events), step.args


PII = ("full_name", "email", "phone")


@pytest.mark.parametrize("request_text", [
    "predict which customers will churn next month from their orders and tickets",
    "Which customers are likely to leave? Build a classifier with 2 trials",
    "can you train a churn model for our clients, using orders",
])
def test_churn_requests_propose_a_label_features_split_and_wait(demo, request_text):
    text, args = _proposed(demo, "churn-" + str(abs(hash(request_text))), request_text)
    label = args["label"]
    assert label["column"] == "churned" and label["entity"] == "customer_id" and label["time"] == "cutoff"
    assert "no order in the 30 days after" in text  # the label in plain words
    assert "WITH cutoffs AS" in label["source"] and "orders" in label["source"]
    assert "split: time" in text and "roc_auc" in text and "lightgbm" in text.lower()
    cols = args["columns"]
    assert {"orders_90d", "days_since_orders", "segment", "region"} <= set(cols)
    assert not set(PII) & set(cols) and "customer_id" not in cols
    assert "`full_name`" in text and "PII" in text  # what was left out, and why
    for why in ("label:", "features", "split:", "model:", "metric:", "budget:"):
        assert why in text


def test_a_request_naming_tables_draws_features_from_those_only(demo):
    _, args = _proposed(demo, "named", "predict which customers will churn next month from their orders and tickets")
    assert any(c.startswith("support_tickets_") for c in args["columns"])
    assert not any(c.startswith("order_items_") for c in args["columns"])
    _, args = _proposed(demo, "orders-only", "can you train a churn model for our clients, using orders")
    assert not any(c.startswith("support_tickets") for c in args["columns"])
    _, args = _proposed(demo, "trials", "Which customers are likely to leave? Build a classifier with 2 trials")
    assert args["trials"] == 2


def test_a_regression_on_a_value_summed_from_the_order_lines(demo):
    text, args = _proposed(demo, "order-value", "train a model to forecast order value from the customer's segment "
                                                "and region and the channel")
    label = args["label"]
    assert label["entity"] == "order_id" and label["time"] == "ordered_at"
    assert "order_items" in label["source"] and "sum" in label["source"].lower()
    assert "regression" in text and "rmse" in text
    assert {"segment", "region", "channel"} <= set(args["columns"])
    assert "amount" not in args["columns"]  # never the label's own source
    assert "country" not in args["columns"] and "`country`" in text  # the request named its columns: those only


def test_a_regression_on_a_column_leaves_out_what_is_filled_in_later(demo):
    text, args = _proposed(demo, "ttr", "build a regression model of how many hours support tickets take to resolve")
    assert args["label"]["column"] == "resolution_hours" and args["label"]["time"] == "opened_at"
    assert {"priority", "category"} <= set(args["columns"])
    for later in ("resolved_at", "csat", "resolution", "status"):
        assert later not in args["columns"], later
    assert "after" in text and "`csat`" in text
    assert "regression" in text


@pytest.mark.parametrize("request_text, says", [
    ("train a classifier on the subscriptions table to predict cancellations", "no table `subscriptions`"),
    ("predict churn from customer_visits", "no table `customer_visits`"),
])
def test_a_table_that_does_not_exist_gets_a_clear_answer(demo, request_text, says):
    events = collect(Session(demo, "missing-" + says[-8:]).send(request_text))
    assert done(events).status != "waiting_approval" and of(events, "approval_needed") == []
    text = text_of(events)
    assert says in text and "customers" in text  # what exists instead


def test_a_class_column_is_a_classification_and_no_target_gets_a_question(demo):
    text, args = _proposed(demo, "priority", "predict the priority of support tickets")
    assert args["label"]["column"] == "priority" and "classification" in text and "log_loss" in text
    events = collect(Session(demo, "no-target").send("which customers are likely to order next month?"))
    assert of(events, "approval_needed") == []
    assert "What should the model predict for each row of `customers`?" in text_of(events)


def test_a_budget_that_cannot_train_is_refused_in_words(demo):
    events = collect(Session(demo, "no-budget").send("predict which customers will churn next month with 0 trials"))
    assert of(events, "approval_needed") == [] and "at least 1 trial, not 0" in text_of(events)


def test_forecasting_a_metric_for_a_period_is_still_declined(demo):
    events = collect(Session(demo, "metric-forecast").send("can you predict how many orders we'll get in 2027"))
    assert of(events, "approval_needed") == [] and "forecast" in text_of(events)


@pytest.mark.slow
def test_an_approved_plan_trains_and_is_followed_to_its_report(demo):
    s = Session(demo, "approved")
    asked = collect(s.send("predict which customers will churn next month from their orders with 2 trials"))
    assert done(asked).status == "waiting_approval"
    finished = of(collect(s.approve()), "step_finished")
    assert len(finished) == 1 and finished[0].ok and finished[0].tool == "start_training", finished
    job_id = finished[0].job_id
    assert job_id and job_id in finished[0].text and finished[0].job_kind == "train"
    seen = list(s.follow_job(job_id, interval=0.2, timeout=300))
    last = seen[-1]
    assert last.final and last.status == "succeeded", (last.text, last.error)
    assert last.kind == "train" and last.model_version == "churned-lightgbm/1"
    assert "test roc auc" in last.text and "baseline roc auc" in last.text
    assert last.report and last.report.endswith("report.json")
    assert s.started_jobs() == [job_id]
    status = of(collect(s.send("how is the job doing?")), "step_finished")[0].text
    assert f"train {job_id} is succeeded (lightgbm model of `churned`)" in status and "test_roc_auc" in status


def test_the_llm_path_proposes_then_starts_after_approval(demo, llm):
    from tools.tabular_training import proposal_of, TrainChoices

    choices = TrainChoices(goal="predict churn", entity="customers", target="churn", sources=["orders"], trials=1)
    spec = proposal_of(demo, choices).spec.model_dump(mode="json", exclude_none=True)
    llm.push(call("propose_training", goal="predict churn", entity="customers", target="churn", sources=["orders"],
                  trials=1),
             call("start_training", **spec))
    s = Session(demo, "llm")
    first = collect(s.send("which customers will churn next month?"))
    proposed = of(first, "step_finished")[0]
    assert proposed.tool == "propose_training" and proposed.ok, proposed.error
    assert "churned" in proposed.text and "no order in the 30 days after" in proposed.text
    system = llm.messages(0)[0]["content"]
    assert "`propose_training`" in system and "`start_training`" in system
    assert {"propose_training", "start_training"} <= {t["function"]["name"] for t in llm.requests[0]["tools"]}
    second = collect(s.send("looks good, start it"))
    waiting = of(second, "approval_needed")[0]
    assert waiting.plan.steps[0].tool == "start_training" and waiting.needs_approval == ["s1"]
    before = len(JobStore(demo).list())
    assert done(collect(s.reject("not now"))).status == "rejected"
    assert len(JobStore(demo).list()) == before

"""The proposal of a training request on the demo company: a churn label whose features see nothing from after the
cutoff (orders planted after it change the label, never a feature), a label summed over an entity's lines, unknown
names refused in one line, and `lathe train "predict …"` printing the proposal and starting nothing unless approved."""
from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from catalog.warehouse import connect_reader, connect_writer
from cli.main import app
from core.errors import UserError
from core.workspace import Workspace
from runtimes.jobs.store import JobStore
from runtimes.tabular.proposal import propose


@pytest.fixture(scope="module")
def demo(module_demo: Workspace) -> Workspace:
    return module_demo


def _rows(ws: Workspace, sql: str) -> dict:
    with connect_reader(ws) as con:
        frame = con.execute(sql).df()
    return {(int(r.customer_id), str(r.cutoff)[:10]): r for r in frame.itertuples()}


def test_orders_after_the_cutoff_change_the_label_and_never_a_feature(demo):
    p = propose(demo, {"entity": "customers", "target": "churn", "sources": ["orders", "support_tickets"]})
    before = _rows(demo, p.spec.label.source)
    churned = next(k for k, r in before.items() if r.churned == 1)
    customer, cutoff = churned[0], dt.datetime.fromisoformat(churned[1])
    with connect_writer(demo) as con:  # an order ten days after that cutoff, a ticket the day after it
        con.execute("INSERT INTO orders VALUES (999999, ?, ?, 'completed', 'web')",
                    [customer, cutoff + dt.timedelta(days=10)])
        con.execute("INSERT INTO support_tickets (ticket_id, customer_id, opened_at, subject, body, category, "
                    "priority, status) VALUES (999999, ?, ?, 's', 'b', 'billing', 'low', 'open')",
                    [customer, cutoff + dt.timedelta(days=1)])
    try:
        after = _rows(demo, p.spec.label.source)
    finally:
        with connect_writer(demo) as con:
            con.execute("DELETE FROM orders WHERE order_id = 999999")
            con.execute("DELETE FROM support_tickets WHERE ticket_id = 999999")
    assert after[churned].churned == 0  # the label sees the order in the 30 days after the cutoff
    for feature in p.spec.columns:  # the features, as of the cutoff, do not
        assert str(getattr(after[churned], feature)) == str(getattr(before[churned], feature)), feature
    assert {"orders_90d", "days_since_orders", "support_tickets_90d"} <= set(p.spec.columns)
    assert "before the cutoff" in p.explain()


def test_a_label_summed_over_the_lines_and_names_that_do_not_exist(demo):
    p = propose(demo, {"entity": "orders", "target": "order_items.amount"})
    assert p.spec.label.column == "order_amount" and "sum of `order_items.amount`" in p.definition
    with connect_reader(demo) as con:
        got = con.execute(f"SELECT order_amount FROM ({p.spec.label.source}) WHERE order_id = 1").fetchone()[0]
        want = con.execute("SELECT sum(amount) FROM order_items WHERE order_id = 1").fetchone()[0]
    assert got == pytest.approx(want)
    with pytest.raises(UserError, match="no table `subscriptions`|`subscriptions`"):
        propose(demo, {"entity": "subscriptions", "target": "churn"})
    with pytest.raises(UserError, match="`satisfaction`"):
        propose(demo, {"entity": "support_tickets", "target": "satisfaction"})


def lathe(ws, *args, input=None):
    return CliRunner().invoke(app, ["--workspace", str(ws.root), *args], input=input)


def test_lathe_train_with_a_request_prints_the_proposal_and_asks(demo):
    r = lathe(demo, "train", "predict which customers will churn next month from their orders", "--trials", "1",
              "--dry-run")
    assert r.exit_code == 0, r.output
    for says in ("label: `churned`", "no order in the 30 days after", "WITH cutoffs AS", "`orders_90d`",
                 "PII", "split: time", "budget: 1 trials", "dry run: nothing was started"):
        assert says in r.output, says
    declined = lathe(demo, "train", "predict which customers will churn next month", "--trials", "1", input="n\n")
    assert declined.exit_code == 1 and "not approved" in declined.output
    missing = lathe(demo, "train", "train a classifier on the subscriptions table to predict cancellations")
    assert missing.exit_code != 0 and "no table `subscriptions`" in missing.output
    both = lathe(demo, "train", "predict churn of customers", "--label", "customers", "--target", "segment")
    assert both.exit_code != 0 and "not both" in both.output
    assert JobStore(demo).list() == []


LAST_CHANNEL = """
feature_views:
  - name: last_channel
    owner: sales-analytics
    description: the channel of each customer's latest order
    entity: {name: customer, join_key: customer_id}
    source: {table: orders}
    event_time: ordered_at
    features:
      - {name: channel, type: string, description: where the latest order came from}
"""


def test_feature_views_on_the_entity_key_are_proposed_and_joined_as_of_the_cutoff(demo):
    from runtimes.features.registry import apply
    from runtimes.tabular.planning import plan_train
    from tests.features_workspace import write_view

    write_view(demo, LAST_CHANNEL)
    apply(demo)
    p = propose(demo, {"entity": "customers", "target": "churn", "sources": ["orders"], "trials": 1})
    assert p.spec.features == ["last_channel"] and "`last_channel@1`" in p.explain()
    plan = plan_train(demo, p.spec)
    assert plan.feature_views == ["last_channel@1"] and "channel" in plan.features
    assert "joined as of `cutoff`" in plan.explain()
    # A view over another table than the ones named is not proposed.
    assert propose(demo, {"entity": "customers", "target": "churn", "sources": ["support_tickets"]}).spec.features == []

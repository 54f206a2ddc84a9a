"""Review: a write step waits for approval; approve, reject with a reason, edit (valid and not), a
non-approver refused, stale decisions refused, and every decision in the audit log."""
from __future__ import annotations

import pytest
from langgraph.types import Command

from agent import audit_log
from agent.session import Session
from core.errors import UserError
from core.principal import Principal
from catalog.store import CatalogStore
from tests.scripted_llm import call
from tests.agent_events import collect, done, of, text_of
from tests.small_workspace import count_rows, tables_in

EMEA_SQL = "SELECT * FROM customers WHERE region = 'EMEA'"


def _propose_write(small_ws, llm, thread="t1", name="emea_customers"):
    llm.push(call("create_derived_table", say="I will save the EMEA customers as a table.", name=name,
                  select_sql=EMEA_SQL, description="EMEA customers"))
    session = Session(small_ws, thread)
    events = collect(session.send("save the EMEA customers as a table"))
    return session, events


def test_a_write_step_waits_then_runs_once_when_approved(small_ws, llm):
    session, events = _propose_write(small_ws, llm)
    proposed = of(events, "plan_proposed")[0]
    assert proposed.needs_approval == ["s1"] and proposed.plan.steps[0].risk.value == "write"
    assert proposed.plan.steps[0].estimated_cost == "creates table `emea_customers` in the warehouse"
    asked = of(events, "approval_needed")[0]
    assert asked.plan_hash == proposed.plan_hash and asked.requested_by == session.principal.name
    assert done(events).status == "waiting_approval"
    assert of(events, "step_started") == []
    assert "emea_customers" not in tables_in(small_ws)
    assert session.pending().plan_hash == proposed.plan_hash

    events = collect(session.approve(reason="looks right", plan_hash=asked.plan_hash))
    assert [e.ok for e in of(events, "step_finished")] == [True]
    assert done(events).status == "answered"
    assert "created table `emea_customers` (3 rows" in done(events).text
    assert count_rows(small_ws, "emea_customers") == 3
    assert CatalogStore(small_ws).load_table("emea_customers") is not None
    assert session.pending() is None

    rows = audit_log.entries(small_ws, "t1")
    assert [(r.decision, r.principal, r.plan_hash, r.reason) for r in rows] == [
        ("approved", session.principal.name, asked.plan_hash, "looks right")]
    assert rows[0].at.endswith("+00:00")
    with pytest.raises(UserError, match="no plan waits for approval in thread t1"):
        collect(session.approve())


def test_reject_with_a_reason_runs_nothing(small_ws, llm):
    session, events = _propose_write(small_ws, llm)
    events = collect(session.reject("we keep EMEA data in the regional warehouse"))
    assert of(events, "step_started") == []
    end = done(events)
    assert end.status == "rejected"
    assert "rejected by" in end.text and "we keep EMEA data in the regional warehouse" in end.text
    assert "emea_customers" not in tables_in(small_ws)
    assert [(r.decision, r.reason) for r in audit_log.entries(small_ws, "t1")] == [
        ("rejected", "we keep EMEA data in the regional warehouse")]
    assert session.history()[-1].role == "assistant" and session.pending() is None


def test_edit_changes_arguments_and_the_edited_plan_waits_again(small_ws, llm):
    session, events = _propose_write(small_ws, llm)
    first = of(events, "approval_needed")[0]
    events = collect(session.edit({"s1": {"name": "emea_only"}}, reason="clearer name"))
    again = of(events, "approval_needed")[0]
    assert again.plan.steps[0].args["name"] == "emea_only" and again.plan_hash != first.plan_hash
    assert again.plan.steps[0].estimated_cost == "creates table `emea_only` in the warehouse"
    assert done(events).status == "waiting_approval" and of(events, "step_started") == []
    with pytest.raises(UserError, match="the plan has changed since it was shown"):
        collect(session.approve(plan_hash=first.plan_hash))
    events = collect(session.approve(plan_hash=again.plan_hash))
    assert done(events).status == "answered"
    assert "emea_only" in tables_in(small_ws) and "emea_customers" not in tables_in(small_ws)
    rows = audit_log.entries(small_ws, "t1")
    assert [r.decision for r in rows] == ["edited", "approved"]
    assert rows[0].detail == {"edits": {"s1": {"name": "emea_only"}}, "new_plan_hash": again.plan_hash}
    assert rows[0].plan_hash == first.plan_hash and rows[1].plan_hash == again.plan_hash


def test_an_invalid_edit_changes_nothing(small_ws, llm):
    session, events = _propose_write(small_ws, llm)
    before = session.pending()
    with pytest.raises(UserError, match=r"step `s1` \(create_derived_table\): argument `name`: String should match"):
        collect(session.edit({"s1": {"name": "emea; drop table customers"}}))
    with pytest.raises(UserError, match="argument `rows`: is not an argument of this tool"):
        collect(session.edit({"s1": {"rows": 5}}))
    with pytest.raises(UserError, match="the plan has no step `s2`"):
        collect(session.edit({"s2": {"name": "x"}}))
    assert session.pending() == before
    assert audit_log.entries(small_ws, "t1") == []


def test_only_an_approver_approves(small_ws, llm):
    _propose_write(small_ws, llm)
    bob = Session(small_ws, "t1", principal=Principal(name="bob", roles={"analyst"}))
    with pytest.raises(UserError, match="`bob` may not approve this plan: approving needs the `approver` role"):
        collect(bob.approve())
    assert bob.pending() is not None and "emea_customers" not in tables_in(small_ws)
    carol = Session(small_ws, "t1", principal=Principal(name="carol", roles={"approver"}))
    events = collect(carol.approve())
    assert done(events).status == "answered" and "emea_customers" in tables_in(small_ws)
    assert [(r.decision, r.principal) for r in audit_log.entries(small_ws, "t1")] == [
        ("refused", "bob"), ("approved", "carol")]


def test_the_graph_itself_refuses_a_decision_without_the_role(small_ws, llm):
    # Defence in depth: a resume that skips the session's check is refused by the review node.
    session, events = _propose_write(small_ws, llm)
    plan_hash = session.pending().plan_hash
    forged = {"action": "approve", "principal": "mallory", "roles": ["analyst"], "plan_hash": plan_hash,
              "decision_id": "forged-1"}
    events = collect(session._run(Command(resume=forged)))
    asked = of(events, "approval_needed")[0]
    assert asked.notice == "`mallory` may not approve: that needs the approver role"
    assert of(events, "step_started") == [] and "emea_customers" not in tables_in(small_ws)
    assert [(r.decision, r.principal) for r in audit_log.entries(small_ws, "t1")] == [("refused", "mallory")]
    events = collect(session._run(Command(resume={**forged, "plan_hash": "0000"})))
    assert of(events, "approval_needed")[0].notice.startswith("that decision was about an earlier version")


def test_a_new_message_while_a_plan_waits_is_refused(small_ws, llm):
    session, _ = _propose_write(small_ws, llm)
    with pytest.raises(UserError, match="a plan waits for approval in thread t1 .*approve, reject or edit it first"):
        collect(session.send("something else"))


def test_policy_can_ask_approval_for_reads_too(small_ws, llm):
    with open(small_ws.settings_path, "a") as f:
        f.write('\n[review]\nrequire_approval = ["read", "write", "compute", "deploy"]\n')
    llm.push(call("list_tables"))
    session = Session(type(small_ws)(small_ws.root), "t2")
    events = collect(session.send("which tables are there?"))
    assert done(events).status == "waiting_approval" and of(events, "step_started") == []
    events = collect(session.approve())
    assert "3 tables" in text_of(events) and done(events).status == "answered"

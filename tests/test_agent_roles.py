"""Roles enforced in the session and the graph, below every front-end: a viewer only reads, an analyst proposes,
an approver approves, and four-eyes (on for deploys by default) keeps the asker from approving their own plan
whenever another approver exists."""
from __future__ import annotations

import pytest
from langgraph.types import Command

from agent import audit_log
from agent.session import Session
from core.errors import UserError
from core.users import UserStore
from core.workspace import Workspace
from tests.scripted_llm import call
from tests.agent_events import collect, done, of
from tests.small_workspace import tables_in

EMEA_SQL = "SELECT * FROM customers WHERE region = 'EMEA'"


@pytest.fixture
def team(small_ws):
    store = UserStore(small_ws)
    for name, roles in (("vic", ["viewer"]), ("ana", ["analyst"]), ("carol", ["approver"]), ("root", ["admin"])):
        store.add(name, roles, "a long password")
    return {u.name: u.principal() for u in store.list()}


def _ask_write(ws, llm, who, thread="t1"):
    llm.push(call("create_derived_table", say="I will save the EMEA customers as a table.", name="emea_customers",
                  select_sql=EMEA_SQL, description="EMEA customers"))
    session = Session(ws, thread, principal=who)
    return session, collect(session.send("save the EMEA customers as a table"))


def _ask_deploy(ws, llm, who, thread="t2"):
    llm.push(call("deploy_model", say="I will deploy it.", models=["nothing-registered"], name="ep"))
    session = Session(ws, thread, principal=who)
    return session, collect(session.send("deploy nothing-registered"))


def test_a_viewer_reads_but_a_plan_that_writes_is_refused_naming_who_can_approve(small_ws, llm, team):
    session, events = _ask_write(small_ws, llm, team["vic"])
    end = done(events)
    assert of(events, "approval_needed") == [] and session.pending() is None
    assert end.status == "rejected"
    assert "`vic` is a viewer" in end.text and "carol, root" in end.text
    assert "emea_customers" not in tables_in(small_ws)
    llm.push(call("run_sql", say="Counting.", sql="SELECT count(*) AS n FROM customers"))
    read = collect(session.send("how many customers are there?"))
    assert done(read).status == "answered" and [e.ok for e in of(read, "step_finished")] == [True]


def test_an_analyst_proposes_and_only_an_approver_approves(small_ws, llm, team):
    session, events = _ask_write(small_ws, llm, team["ana"])
    assert done(events).status == "waiting_approval"
    with pytest.raises(UserError, match="may not approve"):
        collect(session.approve())
    events = collect(Session(small_ws, "t1", principal=team["carol"]).approve())
    assert done(events).status == "answered" and "emea_customers" in tables_in(small_ws)
    approved = [r for r in audit_log.entries(small_ws, "t1") if r.decision == "approved"]
    assert [(r.principal, r.detail.get("requested_by")) for r in approved] == [("carol", "ana")]


def test_four_eyes_the_asker_cannot_approve_their_own_deploy(small_ws, llm, team):
    session, events = _ask_deploy(small_ws, llm, team["carol"])
    asked = of(events, "approval_needed")[0]
    with pytest.raises(UserError, match="`carol` asked for this plan and may not approve it too.*root"):
        collect(session.approve(plan_hash=asked.plan_hash))
    assert session.pending() is not None
    # the graph refuses it as well, for a front-end that resumed it directly
    forged = {"action": "approve", "principal": "carol", "roles": ["approver"], "plan_hash": asked.plan_hash,
              "decision_id": "d-1"}
    again = collect(session._run(Command(resume=forged)))
    assert "may not approve it too" in of(again, "approval_needed")[0].notice and of(again, "step_started") == []
    events = collect(Session(small_ws, "t2", principal=team["root"]).approve())
    assert [e.tool for e in of(events, "step_started")] == ["deploy_model"]  # it ran (and failed: no such model)
    decisions = [(r.decision, r.principal) for r in audit_log.entries(small_ws, "t2")]
    assert decisions == [("refused", "carol"), ("refused", "carol"), ("approved", "root")]


def test_four_eyes_is_off_for_writes_by_default_and_settable(small_ws, llm, team):
    session, _ = _ask_write(small_ws, llm, team["carol"])
    assert done(collect(session.approve())).status == "answered"
    small_ws.settings_path.write_text(small_ws.settings_path.read_text() + '\n[review]\nfour_eyes = ["write"]\n')
    session, _ = _ask_write(Workspace(small_ws.root), llm, team["carol"], thread="t3")  # settings read afresh
    with pytest.raises(UserError, match="may not approve it too"):
        collect(session.approve())


def test_with_no_other_approver_the_asker_may_approve_their_deploy(small_ws, llm):
    UserStore(small_ws).add("solo", ["admin"], "a long password")
    solo = UserStore(small_ws).get("solo").principal()
    session, _ = _ask_deploy(small_ws, llm, solo)
    events = collect(session.approve())
    assert [e.tool for e in of(events, "step_started")] == ["deploy_model"]

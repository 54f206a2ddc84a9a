"""Plans validated against the tool registry, routing, the review policy, charts, events and prompts."""
from __future__ import annotations

import pytest

import prompts
from agent.charts import chart_for
from agent.events import ApprovalNeeded, Done, PlanProposed, TableEvent, TextDelta, event_from_json
from agent.review import ReviewPolicy
from agent.routing import classify
from agent.state import Plan, PlanError, Risk, Step, TableData
from core.errors import UserError
from tools.registry import ToolRegistry


@pytest.fixture(scope="module")
def registry():
    return ToolRegistry.discover()


def _plan(*steps: Step) -> Plan:
    return Plan(steps=list(steps), summary="test")


def test_validation_fills_defaults_and_takes_risk_from_the_tool(registry):
    plan = _plan(Step(id="s1", tool="run_sql", args={"sql": "SELECT 1"}),
                 Step(id="s2", tool="create_derived_table", args={"name": "t", "select_sql": "SELECT 1"},
                      depends_on=["s1"], risk=Risk.read)).validated(registry)
    assert plan.steps[0].args == {"sql": "SELECT 1", "dialect": None, "limit": None}
    # A planner that labels a write step `read` does not make it one.
    assert [s.risk for s in plan.steps] == [Risk.read, Risk.write]
    assert plan.steps[1].args["replace"] is False


@pytest.mark.parametrize("steps, message", [
    ([Step(id="s1", tool="run_sqll", args={"sql": "x"})], "step `s1`: no tool `run_sqll`; did you mean `run_sql`?"),
    ([Step(id="s1", tool="run_sql", args={})], "step `s1` (run_sql): argument `sql`: Field required"),
    ([Step(id="s1", tool="run_sql", args={"sql": "x", "limt": 3})],
     "step `s1` (run_sql): argument `limt`: is not an argument of this tool"),
    ([Step(id="s1", tool="run_sql", args={"sql": "x", "limit": 0})],
     "step `s1` (run_sql): argument `limit`: Input should be greater than or equal to 1"),
    ([Step(id="s1", tool="create_derived_table", args={"name": "bad name", "select_sql": "SELECT 1"})],
     "argument `name`: String should match pattern"),
    ([Step(id="s1", tool="run_sql", args={"sql": "x"}, depends_on=["s9"])],
     "step `s1` depends on `s9`, which is not a step of the plan"),
    ([Step(id="a", tool="run_sql", args={"sql": "x"}, depends_on=["b"]),
      Step(id="b", tool="run_sql", args={"sql": "x"}, depends_on=["a"])],
     "the steps depend on each other in a circle: `a` → `b` → `a`"),
    ([Step(id="s1", tool="run_sql", args={"sql": "x"}), Step(id="s1", tool="list_tables")],
     "step `s1`: the id is used twice"),
])
def test_invalid_plans_say_what_and_where(registry, steps, message):
    with pytest.raises(PlanError) as e:
        _plan(*steps).validated(registry)
    assert message in str(e.value)
    assert isinstance(e.value, UserError)


def test_every_problem_is_named_at_once(registry):
    with pytest.raises(PlanError) as e:
        _plan(Step(id="a", tool="nope"), Step(id="b", tool="run_sql", args={"sql": ""}, depends_on=["z"])).validated(registry)
    text = str(e.value)
    assert "step `a`: no tool `nope`" in text and "argument `sql`" in text and "depends on `z`" in text


def test_order_respects_dependencies_else_keeps_written_order(registry):
    plan = _plan(Step(id="c", tool="list_tables", depends_on=["b"]), Step(id="a", tool="list_tables"),
                 Step(id="b", tool="list_tables", depends_on=["a"]), Step(id="d", tool="list_metrics"))
    assert [s.id for s in plan.validated(registry).order()] == ["a", "d", "b", "c"]


def test_hash_names_what_would_run(registry):
    a = _plan(Step(id="s1", tool="run_sql", args={"sql": "SELECT 1"})).validated(registry)
    b = _plan(Step(id="s1", tool="run_sql", args={"sql": "SELECT 1"}, title="other title")).validated(registry)
    c = _plan(Step(id="s1", tool="run_sql", args={"sql": "SELECT 2"})).validated(registry)
    assert a.hash() == b.hash() != c.hash()


def test_edit_merges_arguments_and_validates_again(registry):
    plan = _plan(Step(id="s1", tool="create_derived_table", args={"name": "t", "select_sql": "SELECT 1"})).validated(registry)
    edited = plan.edited({"s1": {"name": "t2", "replace": True}}, registry)
    assert edited.steps[0].args["name"] == "t2" and edited.steps[0].args["replace"] is True
    assert edited.steps[0].args["select_sql"] == "SELECT 1"
    with pytest.raises(PlanError, match="argument `name`: String should match pattern"):
        plan.edited({"s1": {"name": "drop table x;"}}, registry)
    with pytest.raises(PlanError, match="the plan has no step `s7`"):
        plan.edited({"s7": {"name": "x"}}, registry)
    with pytest.raises(PlanError, match="must change at least one step"):
        plan.edited({}, registry)


@pytest.mark.parametrize("text, route", [
    ("SELECT count(*) FROM orders", "sql"), ("with a as (select 1) select * from a", "sql"),
    ("from orders", "sql"), ("DESCRIBE orders", "sql"), ("drop table customers", "sql"),
    ("revenue by region last quarter", "question"), ("show me revenue", "question"), ("revenue", "question"),
    ("select the top customers", "question"), ("what tables are there?", "question"), ("help", "question"),
])
def test_routing_tells_sql_from_questions(text, route):
    assert classify(text) == route


def test_review_policy_defaults_and_settings(workspace):
    plan = _plan(Step(id="r", tool="list_tables"),
                 Step(id="w", tool="create_derived_table", args={"name": "t", "select_sql": "SELECT 1"}))
    plan = plan.validated(ToolRegistry.discover())
    assert ReviewPolicy.for_workspace(workspace).needs_approval(plan) == ["w"]
    with open(workspace.settings_path, "a") as f:
        f.write('\n[review]\nrequire_approval = ["read", "write", "compute", "deploy"]\n')
    assert ReviewPolicy.for_workspace(type(workspace)(workspace.root)).needs_approval(plan) == ["r", "w"]


def test_review_policy_never_lets_writes_through(workspace):
    with open(workspace.settings_path, "a") as f:
        f.write('\n[review]\nrequire_approval = ["deploy"]\n')
    with pytest.raises(UserError) as e:
        ReviewPolicy.for_workspace(type(workspace)(workspace.root))
    assert "`[review] require_approval`" in str(e.value)
    assert "must include compute, write" in str(e.value)


def test_charts_follow_time_and_category_axes():
    by_month = TableData(columns=["metric_time__month", "revenue"],
                         rows=[["2025-01-01", 10.0], ["2025-02-01", 12.5], ["2025-03-01", 9.0]])
    chart = chart_for("s1", by_month)
    assert (chart.kind, chart.x, chart.y) == ("line", "metric_time__month", ["revenue"])
    by_region = TableData(columns=["customer__region", "revenue", "orders"], rows=[["EMEA", 1.0, 3], ["NA", 2.0, 4]])
    chart = chart_for("s1", by_region)
    assert (chart.kind, chart.x, chart.y, chart.color) == ("bar", "customer__region", ["revenue", "orders"], None)
    split = TableData(columns=["metric_time__month", "customer__region", "revenue"],
                      rows=[["2025-01-01", "EMEA", 1.0], ["2025-01-01", "NA", 2.0]])
    assert chart_for("s1", split).color == "customer__region"
    assert chart_for("s1", TableData(columns=["n"], rows=[[1], [2]])) is None
    assert chart_for("s1", TableData(columns=["region", "n"], rows=[["EMEA", 1]])) is None


def test_events_are_plain_json_and_come_back(registry):
    plan = _plan(Step(id="s1", tool="list_tables")).validated(registry)
    events = [TextDelta(text="hi"), PlanProposed(plan=plan, plan_hash=plan.hash(), needs_approval=[]),
              ApprovalNeeded(thread_id="t", plan=plan, plan_hash=plan.hash(), needs_approval=["s1"]),
              TableEvent(step_id="s1", table=TableData(columns=["a"], rows=[[1]])),
              Done(thread_id="t", status="answered", text="ok")]
    import json

    for ev in events:
        data = json.loads(json.dumps(ev.to_json()))
        assert event_from_json(data) == ev


def test_prompt_templates_load_by_name_and_refuse_missing_values():
    from agent.state import CatalogContext, ColumnBrief, TableBrief

    ctx = CatalogContext(tables=[TableBrief(name="customers", columns=[ColumnBrief(name="email", type="VARCHAR", pii="email")])])
    text = prompts.render("planner_system", context=ctx, today="2026-01-02")
    assert "- `customers`" in text and "`email` VARCHAR [PII: email]" in text and "Today is 2026-01-02" in text
    with pytest.raises(Exception, match="context"):
        prompts.render("planner_system", today=None)
    with pytest.raises(UserError, match="no prompt template `planner_sytem`; did you mean `planner_system`"):
        prompts.render("planner_sytem")

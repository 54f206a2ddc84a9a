"""The offline planner end to end: the question table of `tests/offline_questions.py` sent through
`agent.Session` on the demo company, answers checked against hand-written SQL; derived tables through
approval; follow-ups; a workspace that is not the demo; time phrases as plain input → output.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from agent.planners import choose_planner
from agent.planners.base import PlannerDeps
from agent.planners.offline import OfflinePlanner, create_planner
from agent.planners.question_words import tokenize
from agent.planners.time_phrases import read_time
from agent.planners.value_filters import DimensionValues
from agent.session import Session
from catalog.results import json_value
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader, connect_writer
from core.workspace import Workspace
from tests.offline_questions import QUESTIONS, TODAY, Question
from tests.agent_events import collect, done, of, text_of
from tests.small_workspace import build_small_workspace


@pytest.fixture(autouse=True)
def _no_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("LATHE_MODEL", "LATHE_API_BASE", "LATHE_API_KEY_ENV"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture(scope="module")
def demo(module_demo: Workspace) -> Workspace:
    return module_demo


def fixed(today: dt.date = TODAY) -> Any:
    return lambda deps: create_planner(deps, clock=lambda: today)


def session(ws: Workspace, thread: str, today: dt.date = TODAY) -> Session:
    return Session(ws, thread, planner=fixed(today))


def expected_rows(ws: Workspace, sql: str) -> list[list[Any]]:
    with connect_reader(ws) as con:
        return [[json_value(v) for v in r] for r in con.execute(sql).fetchall()]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def assert_rows(got: list[list[Any]], want: list[list[Any]], ordered: bool) -> None:
    def key(row: list[Any]) -> tuple:
        return tuple((v is None, round(v, 6) if isinstance(v, float) else str(v)) for v in row)

    if not ordered:
        got, want = sorted(got, key=key), sorted(want, key=key)
    assert len(got) == len(want), f"{len(got)} rows, expected {len(want)}:\n{got[:8]}\n{want[:8]}"
    for g, w in zip(got, want):
        assert len(g) == len(w) and all(same(x, y) for x, y in zip(g, w)), f"row {g} != expected {w}"


@pytest.mark.parametrize("q", QUESTIONS, ids=[q.id for q in QUESTIONS])
def test_question_table(demo: Workspace, q: Question) -> None:
    s = session(demo, f"q-{q.id}")
    for earlier in q.before:
        assert done(collect(s.send(earlier))).status == "answered", earlier
    events = collect(s.send(q.text))
    end = done(events)
    assert end.status == q.status, end.text
    plans = of(events, "plan_proposed")
    if q.tool is not None:
        assert [st.tool for st in plans[-1].plan.steps] == [q.tool]
    if q.sql is None and q.first_column_sql is None and q.tool is None and q.status == "answered":
        assert plans == [], "a reply in words proposes no plan"
    tables = of(events, "table")
    if q.sql is not None:
        assert tables, end.text
        assert_rows(tables[-1].table.rows, expected_rows(demo, q.sql), q.ordered)
    if q.first_column_sql is not None:
        assert tables, end.text
        got = sorted(r[0] for r in tables[-1].table.rows)
        assert got == sorted(r[0] for r in expected_rows(demo, q.first_column_sql))
    text = end.text if q.status != "waiting_approval" else text_of(events)
    for words in q.says:
        assert words in text, f"{words!r} not in {text!r}"


def test_without_an_llm_the_offline_planner_is_chosen(demo: Workspace) -> None:
    s = Session(demo, "chosen")
    assert isinstance(s.resources.planner, OfflinePlanner)
    deps = PlannerDeps(demo, s.resources.registry, s.resources.tools, s.resources.catalog)
    assert isinstance(choose_planner(deps), OfflinePlanner)
    events = collect(s.send("orders by channel"))
    assert of(events, "table")[0].table.columns == ["order__channel", "orders"]


def test_a_derived_table_waits_for_approval_then_has_the_rows_and_lineage(demo: Workspace) -> None:
    s = session(demo, "derived")
    events = collect(s.send("create a table of EMEA enterprise customers' revenue by month called emea_enterprise_monthly"))
    assert done(events).status == "waiting_approval"
    waiting = s.pending()
    assert waiting is not None and waiting.needs_approval == ["s1"]
    step = waiting.plan.steps[0]
    assert step.tool == "create_derived_table" and step.args["name"] == "emea_enterprise_monthly"
    with connect_reader(demo) as con:
        assert "emea_enterprise_monthly" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert done(collect(s.approve())).status == "answered"
    want = expected_rows(demo, """SELECT date_trunc('month', oi.ordered_at), sum(oi.amount) FROM order_items oi
                                  JOIN customers c ON c.customer_id = oi.customer_id
                                  WHERE c.region = 'EMEA' AND c.segment = 'enterprise' GROUP BY 1""")
    assert_rows(expected_rows(demo, "SELECT * FROM emea_enterprise_monthly"), want, ordered=False)
    end = done(collect(s.send("where does emea_enterprise_monthly.revenue come from?")))
    assert "`emea_enterprise_monthly.revenue` ← computed from" in end.text and "`order_items.amount` (source data)" in end.text
    end = done(collect(s.send("what is the lineage of orders.status?")))
    assert "`orders.status` is source data" in end.text


def test_a_derived_table_of_the_last_answer_and_a_taken_name(demo: Workspace) -> None:
    s = session(demo, "derived-follow-up")
    collect(s.send("orders by channel in 2025"))
    events = collect(s.send("save that as a table"))
    step = of(events, "plan_proposed")[0].plan.steps[0]
    assert step.tool == "create_derived_table" and step.args["name"] == "orders_by_channel"
    assert "2025-01-01" in step.args["select_sql"] and done(events).status == "waiting_approval"
    collect(s.reject("not now"))
    end = done(collect(s.send("create a table of revenue by region called orders")))
    assert end.status == "answered" and "A table `orders` exists already" in end.text


def test_a_failed_step_is_explained_not_guessed(workspace: Workspace) -> None:
    build_small_workspace(workspace)
    s = session(workspace, "derived-fails")
    collect(s.send("create a table of revenue by region called region_revenue"))
    with connect_writer(workspace) as con:  # the name is taken between the plan and its approval
        con.execute("CREATE TABLE region_revenue AS SELECT 1 AS x")
    end = done(collect(s.approve()))
    assert end.status == "failed" and "`create_derived_table` failed:" in end.text and "region_revenue" in end.text
    assert "rephrase the question" in end.text
    assert expected_rows(workspace, "SELECT * FROM region_revenue") == [[1]]


def test_the_clock_decides_what_relative_time_means(demo: Workspace) -> None:
    events = collect(session(demo, "clock", today=dt.date(2026, 2, 10)).send("revenue last quarter"))
    assert "last quarter (2025-10-01 to 2025-12-31)" in done(events).text
    want = expected_rows(demo, "SELECT sum(amount) FROM order_items WHERE ordered_at >= DATE '2025-10-01' "
                               "AND ordered_at < DATE '2026-01-01'")
    assert_rows(of(events, "table")[0].table.rows, want, ordered=True)


def test_sql_failures_are_explained_not_guessed(demo: Workspace) -> None:
    end = done(collect(session(demo, "bad-sql").send("SELECT regin FROM customers")))
    assert end.status == "failed" and "regin" in end.text and "With no LLM configured I cannot correct it" in end.text


def test_any_workspace_uses_its_own_words_and_values(workspace: Workspace) -> None:
    build_small_workspace(workspace)  # a `revenue` metric, `region` with synonym "area", regions EMEA, NA, APAC
    s = session(workspace, "small")
    events = collect(s.send("revenue by area for EMEA and APAC"))
    want = expected_rows(workspace, """SELECT c.region, sum(o.amount) FROM orders o JOIN customers c USING (customer_id)
                                        WHERE c.region IN ('EMEA', 'APAC') GROUP BY 1""")
    assert_rows(of(events, "table")[0].table.rows, want, ordered=False)
    assert "`area` is synonym of column `customers.region`" in done(events).text
    assert "`revenue`" in done(collect(s.send("help"))).text


def test_dimension_values_are_read_once_per_session(workspace: Workspace) -> None:
    build_small_workspace(workspace)
    s = session(workspace, "values")
    assert done(collect(s.send("revenue in EMEA"))).status == "answered"
    with connect_writer(workspace) as con:
        con.execute("INSERT INTO customers VALUES (7, 'Person 7', 'LATAM')")
    assert "I found `LATAM` in no dimension" in done(collect(s.send("revenue in LATAM"))).text
    assert "only `customer__region` = `LATAM`" in done(collect(session(workspace, "values-2").send("revenue in LATAM"))).text


def test_a_dimension_that_cannot_be_read_leaves_the_others(workspace: Workspace) -> None:
    build_small_workspace(workspace)
    with connect_writer(workspace) as con:
        con.execute("DROP TABLE orders")
    values = DimensionValues(workspace).of(CatalogStore(workspace).load())
    assert values == {("customers", "region"): ["APAC", "EMEA", "NA"]}


TIME_CASES = [
    ("last quarter", (dt.date(2026, 7, 1), dt.date(2026, 10, 1)), None),
    ("in 2025", (dt.date(2025, 1, 1), dt.date(2026, 1, 1)), None),
    ("by month", (None, None), "month"),
    ("since March", (dt.date(2026, 3, 1), None), None),
    ("since December", (dt.date(2025, 12, 1), None), None),
    ("last 30 days", (dt.date(2026, 10, 16), dt.date(2026, 11, 15)), None),
    ("this year", (dt.date(2026, 1, 1), dt.date(2027, 1, 1)), None),
    ("Q3 2026", (dt.date(2026, 7, 1), dt.date(2026, 10, 1)), None),
    ("Q4", (dt.date(2026, 10, 1), dt.date(2027, 1, 1)), None),
    ("Q1", (dt.date(2026, 1, 1), dt.date(2026, 4, 1)), None),
    ("last month", (dt.date(2026, 10, 1), dt.date(2026, 11, 1)), None),
    ("last 3 months weekly", (dt.date(2026, 8, 1), dt.date(2026, 11, 1)), "week"),
    ("last week", (dt.date(2026, 11, 2), dt.date(2026, 11, 9)), None),
    ("yesterday", (dt.date(2026, 11, 14), dt.date(2026, 11, 15)), None),
    ("year to date", (dt.date(2026, 1, 1), dt.date(2026, 11, 16)), None),
    ("between January and March 2025", (dt.date(2025, 1, 1), dt.date(2025, 4, 1)), None),
    ("from 2025-03-10 to 2025-03-12", (dt.date(2025, 3, 10), dt.date(2025, 3, 13)), None),
    ("before 2026", (None, dt.date(2026, 1, 1)), None),
    ("in 2025 and 2026 by quarter", (dt.date(2025, 1, 1), dt.date(2027, 1, 1)), "quarter"),
    ("in 2026 since March", (dt.date(2026, 3, 1), dt.date(2027, 1, 1)), None),
    ("third quarter of 2025", (dt.date(2025, 7, 1), dt.date(2025, 10, 1)), None),
    ("may we see revenue", (None, None), None),  # "may" is a verb here, not a month
    ("in May", (dt.date(2026, 5, 1), dt.date(2026, 6, 1)), None),
    ("daily", (None, None), "day"),
]


@pytest.mark.parametrize("text, days, grain", TIME_CASES, ids=[c[0] for c in TIME_CASES])
def test_time_phrases(text: str, days: tuple, grain: str | None) -> None:
    reading = read_time(tokenize(text), TODAY)
    assert (reading.start, reading.end) == days and reading.grain == grain



DEALS = """deal_id,stage,owner_team,amount,closed_on
1,won,east,100.5,2025-01-03
2,lost,west,20,2025-02-01
3,won,west,30,2025-02-11
4,open,east,7.5,2025-03-01
5,won,east,12,2025-03-09
"""


def test_an_uploaded_table_gets_a_semantic_model_and_is_answered_from_at_once(workspace: Workspace,
                                                                                tmp_path: Any) -> None:
    from catalog.importers import import_paths

    build_small_workspace(workspace)  # its `orders` table has an `amount` column too
    csv = tmp_path / "deals.csv"
    csv.write_text(DEALS)
    import_paths(workspace, [csv])
    proposal = (workspace.catalog_dir / "semantic" / "proposed_deals.yml").read_text()
    assert "deals_amount" in proposal and "stage" in proposal and "closed_on" in proposal and "deal_id" in proposal
    s = session(workspace, "uploaded")
    cases = [
        ("deals amount by stage", "SELECT stage, sum(amount) FROM deals GROUP BY 1"),
        ("what's the average amount in deals, by owner team?", "SELECT owner_team, avg(amount) FROM deals GROUP BY 1"),
        ("max amount of deals that were won", "SELECT max(amount) FROM deals WHERE stage = 'won'"),
        ("deals amount in Feb 2025", "SELECT sum(amount) FROM deals WHERE closed_on >= DATE '2025-02-01' "
                                     "AND closed_on < DATE '2025-03-01'"),
        ("share of deals that are won", "SELECT count(*) FILTER (WHERE stage = 'won') / count(*) FROM deals"),
    ]
    for text, sql in cases:
        events = collect(s.send(text))
        assert of(events, "table"), f"{text}: {done(events).text}"
        assert_rows(of(events, "table")[-1].table.rows, expected_rows(workspace, sql), ordered=False)
        assert "I read this as" in done(events).text or "I read this as" in text_of(events)


def test_a_table_without_a_semantic_model_is_answered_from_that_table(workspace: Workspace) -> None:
    build_small_workspace(workspace)  # weather_readings has no semantic model
    with connect_writer(workspace) as con:
        con.execute("INSERT INTO weather_readings VALUES ('north', 3.5), ('north', 5.0), ('south', 21.0)")
    events = collect(session(workspace, "no-model").send("average celsius by station"))
    assert_rows(of(events, "table")[0].table.rows,
                expected_rows(workspace, "SELECT station, avg(celsius) FROM weather_readings GROUP BY 1"), ordered=False)
    assert "average of `weather_readings.celsius`" in done(events).text

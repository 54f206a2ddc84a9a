"""`Session` without an LLM: the fallback planner, SQL typed directly, threads, errors from the catalog,
and the catalog context following changes to the catalog."""
from __future__ import annotations

import json

import pytest

from agent.catalog_cache import CatalogCache
from agent.context import gather_context
from agent.planners import choose_planner
from agent.planners.base import PlannerDeps
from agent.planners.fallback import FallbackPlanner
from agent.session import Session
from core.errors import UserError
from core.workspace import Workspace, WorkspaceError
from tests.agent_events import collect, done, of, text_of
from tools.registry import ToolRegistry


@pytest.fixture(autouse=True)
def _no_llm(monkeypatch):
    monkeypatch.delenv("LATHE_MODEL", raising=False)
    monkeypatch.delenv("LATHE_API_BASE", raising=False)


def test_without_an_llm_the_offline_planner_is_chosen(small_ws):
    from agent.planners.offline import OfflinePlanner

    assert isinstance(Session(small_ws, "t1").resources.planner, OfflinePlanner)


def test_the_fallback_planner_answers_plainly_what_it_cannot_do(small_ws):
    session = Session(small_ws, "t1", planner=lambda deps: FallbackPlanner())
    assert isinstance(session.resources.planner, FallbackPlanner)
    events = collect(session.send("revenue by region last quarter"))
    end = done(events)
    assert end.status == "answered" and of(events, "plan_proposed") == []
    assert "No LLM is configured, so I understand only SQL typed directly" in end.text
    assert "LATHE_MODEL" in end.text and text_of(events) == end.text


def test_without_an_llm_typed_sql_runs_and_failures_are_explained(small_ws):
    session = Session(small_ws, "t1")
    events = collect(session.send("SELECT region FROM customers WHERE customer_id = 1"))
    assert of(events, "table")[0].table.rows == [["EMEA"]]
    assert all(json.loads(json.dumps(e.to_json())) == e.to_json() for e in events)
    events = collect(session.send("SELECT regin FROM customers"))
    end = done(events)
    assert end.status == "failed"
    assert "regin" in end.text and "With no LLM configured I cannot correct it" in end.text
    events = collect(session.send("DROP TABLE customers"))
    assert done(events).status == "failed" and "DROP refused" in done(events).text


def test_threads_are_listed_newest_first_with_their_first_message(small_ws):
    collect(Session(small_ws, "a").send("SELECT 1 AS one"))
    b = Session(small_ws, "b")
    collect(b.send("SELECT 2 AS two"))
    collect(b.send("SELECT 3 AS three"))
    threads = Session.threads(small_ws)
    assert [(t.thread_id, t.title, t.turns) for t in threads] == [("b", "SELECT 2 AS two", 2), ("a", "SELECT 1 AS one", 1)]
    assert [t.text for t in Session(small_ws, "b").history()][0::2] == ["SELECT 2 AS two", "SELECT 3 AS three"]


def test_a_broken_catalog_file_is_reported_and_the_thread_recovers(small_ws):
    session = Session(small_ws, "t1")
    bad = small_ws.catalog_dir / "tables" / "orders.yml"
    good = bad.read_text()
    bad.write_text("name: orders\ncolumns: [\n")
    events = collect(session.send("how many orders?"))
    assert done(events).status == "failed" and "orders.yml" in of(events, "error")[0].message
    bad.write_text(good)
    events = collect(session.send("SELECT count(*) AS n FROM orders"))
    assert of(events, "table")[0].table.rows == [[12]] and done(events).status == "answered"


def test_bad_input_is_refused_clearly(small_ws, tmp_path):
    with pytest.raises(UserError, match="the message is empty"):
        collect(Session(small_ws, "t1").send("   "))
    with pytest.raises(WorkspaceError, match="no Lathe workspace at"):
        Session(tmp_path / "nowhere", "t1")
    with open(small_ws.settings_path, "a") as f:
        f.write('\n[llm]\nmodel = "openai/x"\napi_key_env = "LATHE_TEST_NO_SUCH_KEY"\n')
    with pytest.raises(UserError, match="`\\[llm\\] api_key_env` names LATHE_TEST_NO_SUCH_KEY, which is not set"):
        Session(Workspace(small_ws.root), "t1")


def test_the_planner_is_chosen_from_settings(small_ws, llm):
    deps = PlannerDeps(small_ws, ToolRegistry.discover(), ToolRegistry.discover().bind(small_ws), CatalogCache(small_ws))
    assert choose_planner(deps).name == "llm"  # the `llm` fixture sets LATHE_MODEL
    seen = []
    session = Session(small_ws, "t1", planner=lambda d: seen.append(d) or FallbackPlanner())
    assert seen[0].workspace == small_ws and "run_sql" in seen[0].tools
    assert session.resources.planner.name == "fallback"


def test_context_is_relevant_capped_and_follows_catalog_changes(small_ws):
    cache = CatalogCache(small_ws)
    ctx = gather_context(cache, "customer names by area")
    assert [t.name for t in ctx.tables][:1] == ["customers"] and "weather_readings" not in {t.name for t in ctx.tables}
    assert ctx.tables[0].columns[1].pii == "name"
    assert gather_context(cache, "weather").tables[0].name == "weather_readings"
    follow_up = gather_context(cache, "and per month?", previous=ctx)
    assert {t.name for t in follow_up.tables} == {t.name for t in ctx.tables}  # nothing new matched: kept
    tool = ToolRegistry.discover().bind(small_ws)["create_derived_table"]
    tool.run_validated(tool.schema()(name="station_list", select_sql="SELECT station FROM weather_readings",
                                     description="weather stations list"))
    assert "station_list" in {t.name for t in gather_context(cache, "weather stations list").tables}

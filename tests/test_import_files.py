"""Importing uploaded files from the chat: `import_files` reads only `<workspace>/uploads/`, replacing a table
is a write that waits for an approver, and the offline planner reads such requests only when an uploads/ path
is named."""
from __future__ import annotations

import pytest

from agent.session import Session
from core.errors import UserError
from core.principal import Principal
from catalog.store import CatalogStore
from core.workspace import Workspace
from tests.agent_events import collect, done, of
from tests.small_workspace import count_rows, tables_in
from tools.import_files import ImportFiles, ImportFilesArgs

NEW_ORDERS = ("order_id,customer_id,amount,ordered_at,status\n"
              "1,1,5.00,2025-02-01 00:00:00,completed\n"
              "2,2,7.50,2025-02-02 00:00:00,returned\n"
              "3,3,9.25,2025-02-03 00:00:00,completed\n")
REPLACE = "replace table orders with the uploaded file uploads/orders.csv"


@pytest.fixture(autouse=True)
def _no_llm(monkeypatch):
    monkeypatch.delenv("LATHE_MODEL", raising=False)
    monkeypatch.delenv("LATHE_API_BASE", raising=False)


@pytest.fixture
def uploaded(small_ws: Workspace) -> Workspace:
    (small_ws.root / "uploads").mkdir()
    (small_ws.root / "uploads" / "orders.csv").write_text(NEW_ORDERS)
    (small_ws.root / "uploads" / "stock_levels.csv").write_text("sku,units\nA,1\nB,2\n")
    return small_ws


def _propose(ws: Workspace, text: str = REPLACE, thread: str = "t1") -> tuple[Session, list]:
    session = Session(ws, thread)
    return session, collect(session.send(text))


@pytest.mark.slow
def test_replacing_a_table_waits_for_approval_then_replaces_rows_and_keeps_metadata(uploaded):
    session, events = _propose(uploaded)
    proposed = of(events, "plan_proposed")[0]
    [step] = proposed.plan.steps
    assert step.tool == "import_files" and step.risk.value == "write"
    assert step.args == {"paths": ["uploads/orders.csv"], "replace": True}
    assert step.estimated_cost == "replaces table `orders` (12 rows now) with 3 rows from uploads/orders.csv"
    assert proposed.needs_approval == ["s1"] and done(events).status == "waiting_approval"
    assert of(events, "step_started") == [] and count_rows(uploaded, "orders") == 12

    analyst = Session(uploaded, "t1", principal=Principal(name="bob", roles={"analyst"}))
    with pytest.raises(UserError, match="`bob` may not approve this plan"):
        collect(analyst.approve())
    assert count_rows(uploaded, "orders") == 12

    events = collect(session.approve(reason="fresh export"))
    assert [e.ok for e in of(events, "step_finished")] == [True] and done(events).status == "answered"
    assert count_rows(uploaded, "orders") == 3
    table = CatalogStore(uploaded).load_table("orders")
    assert table.description == "One row per order."
    assert {c.name: c.description for c in table.columns}["amount"] == "order value"


def test_the_chat_uis_request_for_several_kept_uploads(uploaded):
    kept = uploaded.root / "uploads" / "20261203T132000-a1b2c3"
    kept.mkdir()
    (kept / "orders.csv").write_text(NEW_ORDERS)
    (kept / "customers.csv").write_text("customer_id,full_name,region\n1,Ann,EMEA\n")
    session, events = _propose(uploaded, "replace tables orders, customers with the uploaded files "
                                         "uploads/20261203T132000-a1b2c3/orders.csv "
                                         "uploads/20261203T132000-a1b2c3/customers.csv")
    [step] = of(events, "plan_proposed")[0].plan.steps
    assert step.args["replace"] is True and len(step.args["paths"]) == 2
    assert step.estimated_cost.count("replaces table") == 2
    collect(session.approve())
    assert count_rows(uploaded, "orders") == 3 and count_rows(uploaded, "customers") == 1


def test_rejecting_the_replacement_changes_nothing(uploaded):
    before = CatalogStore(uploaded).load_table("orders")
    session, _ = _propose(uploaded)
    events = collect(session.reject("wrong export"))
    assert done(events).status == "rejected" and of(events, "step_started") == []
    assert count_rows(uploaded, "orders") == 12
    assert CatalogStore(uploaded).load_table("orders") == before


@pytest.mark.parametrize("text", [
    "load uploads/stock_levels.csv into table stock_levels",
    "import the uploaded file uploads/stock_levels.csv",
    "please import uploads/stock_levels.csv",
])
def test_a_new_table_from_an_upload_is_a_write_too(uploaded, text):
    session, events = _propose(uploaded, text)
    [step] = of(events, "plan_proposed")[0].plan.steps
    assert step.tool == "import_files" and step.args == {"paths": ["uploads/stock_levels.csv"], "replace": False}
    assert step.estimated_cost == "creates table `stock_levels` with 2 rows from uploads/stock_levels.csv"
    assert "stock_levels" not in tables_in(uploaded)
    collect(session.approve())
    assert count_rows(uploaded, "stock_levels") == 2


@pytest.mark.parametrize("text", [
    "load uploads/orders.csv into table orders, replacing it",
    "Replace the orders table with uploads/orders.csv",
    "overwrite orders from the uploaded file uploads/orders.csv",
])
def test_replace_wordings(uploaded, text):
    _, events = _propose(uploaded, text)
    [step] = of(events, "plan_proposed")[0].plan.steps
    assert step.tool == "import_files" and step.args == {"paths": ["uploads/orders.csv"], "replace": True}


def test_an_existing_table_without_replace_words_is_asked_about_not_planned(uploaded):
    _, events = _propose(uploaded, "import the uploaded file uploads/orders.csv")
    assert of(events, "plan_proposed") == []
    assert "table `orders` already exists" in done(events).text and "replace table orders with" in done(events).text
    assert count_rows(uploaded, "orders") == 12


@pytest.mark.parametrize("text", [
    "how many orders are there",
    "replace the orders table",
    "import orders.csv",
    "what is in the uploads table",
    "revenue by region last quarter",
])
def test_questions_without_an_uploads_path_are_not_imports(uploaded, text):
    _, events = _propose(uploaded, text)
    steps = [s for p in of(events, "plan_proposed") for s in p.plan.steps]
    assert all(s.tool != "import_files" for s in steps)


def test_a_table_name_other_than_the_files_is_explained_not_loaded(uploaded):
    _, events = _propose(uploaded, "load uploads/stock_levels.csv into table inventory")
    assert of(events, "plan_proposed") == []
    assert "becomes table `stock_levels`, not `inventory`" in done(events).text
    assert "stock_levels" not in tables_in(uploaded) and "inventory" not in tables_in(uploaded)


def test_an_upload_that_is_not_there_is_said_plainly(uploaded):
    _, events = _propose(uploaded, "import the uploaded file uploads/missing.csv")
    assert of(events, "plan_proposed") == []
    assert "uploads/missing.csv" in done(events).text and "no such file" in done(events).text


@pytest.mark.parametrize("path, why", [
    ("uploads/../warehouse.duckdb", "inside the uploads folder"),
    ("../outside.csv", "inside the uploads folder"),
    ("/etc/passwd", "inside the uploads folder"),
    ("catalog/tables/orders.yml", "inside the uploads folder"),
    ("uploads/notes.json", "CSV, TSV or Parquet"),
    ("uploads/nothing.csv", "no such file"),
])
def test_the_tool_refuses_paths_outside_uploads_and_other_kinds(uploaded, path, why):
    (uploaded.root / "outside.csv").write_text("a\n1\n")
    (uploaded.root.parent / "outside.csv").write_text("a\n1\n")
    (uploaded.root / "uploads" / "notes.json").write_text('[{"a": 1}]')
    tool = ImportFiles(workspace=uploaded)
    args = ImportFilesArgs(paths=[path], replace=True)
    with pytest.raises(UserError, match=why):
        tool.estimate(args)
    with pytest.raises(UserError, match=why):
        tool.run_validated(args)
    assert count_rows(uploaded, "orders") == 12 and "outside" not in tables_in(uploaded)


def test_a_link_out_of_uploads_is_refused(uploaded, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    (uploaded.root / "uploads" / "secret.csv").symlink_to(secret)
    with pytest.raises(UserError, match="inside the uploads folder"):
        ImportFiles(workspace=uploaded).run_validated(ImportFilesArgs(paths=["uploads/secret.csv"]))
    assert "secret" not in tables_in(uploaded)


def test_a_traversal_path_in_a_chat_plan_is_refused_before_approval(uploaded):
    _, events = _propose(uploaded, "import the uploaded file uploads/../warehouse.duckdb")
    assert of(events, "plan_proposed") == [] and "orders" in tables_in(uploaded)


def test_an_edit_that_points_outside_uploads_is_not_applied(uploaded):
    (uploaded.root / "outside.csv").write_text("order_id\n1\n")
    session, _ = _propose(uploaded)
    before = session.pending()
    with pytest.raises(UserError, match="outside.csv: only files inside the uploads folder"):
        collect(session.edit({"s1": {"paths": ["outside.csv"]}}))
    assert session.pending().plan_hash == before.plan_hash and count_rows(uploaded, "orders") == 12

"""The agent's tools: found by module, typed arguments, declared risks, and each a thin, real wrapper
over the catalog on a small DuckDB workspace."""
from __future__ import annotations

import ast

import pytest

from core.errors import UserError
from core.principal import Principal
from tests.conftest import ROOT
from tests.small_workspace import tables_in
from tools.registry import ToolRegistry, tools_in
from tools.risk import Risk


def _run(ws, tool_name, /, principal=None, **args):
    tool = ToolRegistry.discover().bind(ws, principal)[tool_name]
    return tool.run_validated(tool.schema().model_validate(args))


def test_registry_finds_every_tool_with_its_risk():
    reg = ToolRegistry.discover()
    assert {n: reg.risk(n) for n in reg.names} == {
        "create_derived_table": Risk.write, "describe_table": Risk.read, "list_metrics": Risk.read,
        "list_tables": Risk.read, "query_metrics": Risk.read, "run_sql": Risk.read, "search_catalog": Risk.read,
        "propose_finetune": Risk.read, "start_finetune": Risk.compute, "job_status": Risk.read,
        "list_models": Risk.read, "approve_model_version": Risk.write,
        "create_monitor": Risk.write, "endpoint_report": Risk.read, "list_alerts": Risk.read,
        "deploy_model": Risk.deploy, "list_endpoints": Risk.read, "invoke_endpoint": Risk.read,
        "stop_endpoint": Risk.deploy,
        "run_batch": Risk.compute, "batch_status": Risk.read, "submit_async": Risk.compute, "async_status": Risk.read,
        "who_owns": Risk.read, "define_term": Risk.read, "pii_columns": Risk.read, "column_lineage": Risk.read,
            "import_files": Risk.write, "propose_training": Risk.read, "start_training": Risk.compute}
    with pytest.raises(UserError, match="no tool `describe_tabel`; did you mean `describe_table`"):
        reg.get("describe_tabel")


def test_registry_adds_tools_from_other_modules():
    reg = ToolRegistry.discover(["tests.test_agent_resume"])
    assert {"bump_counter", "crash_once"} <= set(reg.names) and reg.risk("bump_counter") is Risk.write
    import tests.test_agent_resume as mod

    assert {t.tool_name() for t in tools_in(mod)} == {"bump_counter", "crash_once", "slow_bump"}


def test_tools_never_import_the_agent():
    for path in sorted((ROOT / "tools").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "agent" or n.startswith("agent.") for n in names), f"{path.name} imports {names}"


def test_tool_arguments_are_typed_for_the_llm():
    reg = ToolRegistry.discover()
    schema = reg.schema("query_metrics").model_json_schema()
    assert schema["required"] == ["metrics"] and schema["additionalProperties"] is False
    assert schema["properties"]["group_by"]["type"] == "array"


def test_list_and_describe(small_ws):
    out = _run(small_ws, "list_tables")
    assert out.text == "3 tables: `customers`, `orders`, `weather_readings`"
    assert out.result.columns[:3] == ["table", "description", "rows"]
    out = _run(small_ws, "list_metrics")
    assert out.result.rows == [["revenue", "simple", "", "Money from completed and other orders"]]
    out = _run(small_ws, "describe_table", table="Customers")
    assert "PII: full_name (name)" in out.text and "6 rows" in out.text
    assert [r[0] for r in out.result.rows] == ["customer_id", "full_name", "region"]
    with pytest.raises(UserError, match="no table `custmers`; did you mean `customers`"):
        _run(small_ws, "describe_table", table="custmers")


def test_search_finds_by_words(small_ws):
    out = _run(small_ws, "search_catalog", text="weather stations temperature", k=3)
    assert out.result.rows[0][:2] == ["table", "weather_readings"]
    assert out.text.startswith("3 matches for `weather stations temperature`")


def test_run_sql_reads_and_refuses_writes(small_ws):
    out = _run(small_ws, "run_sql", sql="SELECT region, count(*) AS n FROM customers GROUP BY 1 ORDER BY 1")
    assert out.result.rows == [["APAC", 1], ["EMEA", 3], ["NA", 2]]
    assert out.text.splitlines()[0] == "3 rows; columns: region, n"
    out = _run(small_ws, "run_sql", sql="SELECT customer_id FROM customers ORDER BY 1", limit=2)
    assert out.result.rows == [[1], [2]] and out.result.truncated
    with pytest.raises(UserError, match="DROP refused"):
        _run(small_ws, "run_sql", sql="DROP TABLE customers")


def test_run_sql_masks_pii_for_a_principal_without_grants(small_ws):
    out = _run(small_ws, "run_sql", principal=Principal(name="ann", roles={"analyst"}),
               sql="SELECT full_name FROM customers ORDER BY customer_id LIMIT 1")
    assert out.result.masked_columns == ["full_name"] and out.result.rows[0][0] != "Person 1"
    assert "masked (PII): full_name" in out.text


def test_query_metrics_goes_through_the_semantic_layer(small_ws):
    out = _run(small_ws, "query_metrics", metrics=["revenue"], group_by=["customer__region"],
               order_by=["-revenue"], limit=2)
    assert out.result.columns == ["customer__region", "revenue"] and len(out.result.rows) == 2
    assert out.result.rows[0][1] >= out.result.rows[1][1]
    with pytest.raises(UserError, match="revnue"):
        _run(small_ws, "query_metrics", metrics=["revnue"])


def test_create_derived_table_writes_table_and_catalog(small_ws):
    out = _run(small_ws, "create_derived_table", name="big_orders",
               select_sql="SELECT order_id, amount FROM orders WHERE amount > 50", description="orders over 50")
    assert out.data == {"table": "big_orders", "row_count": 7}
    assert out.text == "created table `big_orders` (7 rows, columns: order_id, amount)"
    assert "big_orders" in tables_in(small_ws)
    with pytest.raises(UserError):
        _run(small_ws, "create_derived_table", name="big_orders", select_sql="SELECT 1 AS x")


def test_catalog_answers_are_read_tools(small_ws):
    assert "`customers.full_name` (name)" in _run(small_ws, "pii_columns", table="customers").text
    assert "No column of table `orders` is tagged as PII" in _run(small_ws, "pii_columns", table="orders").text
    assert "`orders.status` is source data" in _run(small_ws, "column_lineage", table="orders", column="status").text
    assert "Table `orders` is" in _run(small_ws, "who_owns", table="orders").text
    with pytest.raises(UserError, match="no glossary term or metric `revenu`; did you mean `revenue`"):
        _run(small_ws, "define_term", name="revenu")
    assert "Metric `revenue`" in _run(small_ws, "define_term", name="Revenue").text

"""`lathe deploy`, `lathe endpoints …`, `lathe invoke` and the agent's serving tools, on a workspace with
registered versions and real endpoint processes on loopback."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from core.errors import UserError
from cli.main import app
from runtimes.serving.endpoints import deploy as endpoints
from runtimes.serving.endpoints.store import EndpointStore
from tests.serving_registry import registered_workspace
from tools.registry import ToolRegistry
from tools.risk import Risk


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = registered_workspace(tmp_path_factory.mktemp("serving-cli"))
    yield ws
    for e in EndpointStore(ws).list():
        endpoints.stop(ws, e.name)


def lathe(ws, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(ws.root), *args])


def test_cli_refuses_bad_deploys_plainly(ws):
    out = lathe(ws, "deploy", "tickets-sft@2")
    assert out.exit_code == 2 and "version 2 is pending, not approved" in out.output
    out = lathe(ws, "deploy", "tickets-sft@7")
    assert out.exit_code == 2 and "its versions: 1, 2" in out.output
    assert "no endpoint `nope`" in lathe(ws, "endpoints", "show", "nope").output
    assert lathe(ws, "endpoints", "list", "--json").output.strip() == "[]"


@pytest.mark.slow
def test_cli_deploy_invoke_list_show_stop_start_delete(ws):
    out = lathe(ws, "deploy", "tickets-sft", "--name", "cli", "--serverless", "--idle-timeout", "120")
    assert out.exit_code == 0, out.output
    assert "endpoint `cli` idle at http://127.0.0.1:" in out.output and "API key (shown once, keep it): lathe-" in out.output

    said = lathe(ws, "invoke", "cli", "Order 5 ships on day", "--max-tokens", "4")
    assert said.exit_code == 0, said.output
    assert "[tickets-sft@1: 4 tokens, length" in said.output and "cold start" in said.output
    streamed = lathe(ws, "invoke", "cli", "Order 5 ships on day", "--max-tokens", "4", "--stream", "--json")
    assert json.loads(streamed.output)["usage"]["completion_tokens"] == 4

    listed = json.loads(lathe(ws, "endpoints", "list", "--json").output)
    assert [(e["name"], e["status"], e["mode"]) for e in listed] == [("cli", "running", "serverless")]
    assert "key_hash" not in listed[0]
    shown = lathe(ws, "endpoints", "show", "cli")
    assert shown.exit_code == 0 and "cold starts" in shown.output and "cold_start" in shown.output

    assert "endpoint `cli` stopped" in lathe(ws, "endpoints", "stop", "cli").output
    refused = lathe(ws, "invoke", "cli", "hello")
    assert refused.exit_code == 2 and "endpoint `cli` is stopped: start it with `lathe endpoints start cli`" in refused.output
    assert "endpoint `cli` idle at http://127.0.0.1:" in lathe(ws, "endpoints", "start", "cli").output
    assert "endpoint `cli` deleted" in lathe(ws, "endpoints", "delete", "cli", "--yes").output
    assert json.loads(lathe(ws, "endpoints", "list", "--json").output) == []


@pytest.mark.slow
def test_tools_deploy_list_invoke_stop(ws):
    registry = ToolRegistry.discover()
    assert {n: registry.risk(n) for n in ("deploy_model", "list_endpoints", "invoke_endpoint", "stop_endpoint")} == {
        "deploy_model": Risk.deploy, "list_endpoints": Risk.read, "invoke_endpoint": Risk.read,
        "stop_endpoint": Risk.deploy}
    schema = registry.schema("deploy_model").model_json_schema()
    assert schema["required"] == ["models"] and schema["additionalProperties"] is False
    tools = registry.bind(ws)

    def call(name: str, /, **args):
        tool = tools[name]
        return tool.run_validated(tool.schema().model_validate(args))

    assert "serving replies-sft (serverless" in tools["deploy_model"].estimate(
        tools["deploy_model"].schema().model_validate({"models": ["replies-sft"], "serverless": True}))
    assert call("list_endpoints").text.startswith("no endpoints yet")
    with pytest.raises(UserError, match="pending, not approved"):
        call("deploy_model", models=["tickets-sft@2"])

    deployed = call("deploy_model", models=["replies-sft"], name="agent", serverless=True)
    assert "endpoint `agent` is idle at http://127.0.0.1:" in deployed.text
    assert deployed.data["api_key"] in deployed.text
    listed = call("list_endpoints")
    assert listed.text == "1 endpoint:\n- `agent`: idle, serverless, serving replies-sft@1"
    assert listed.result.rows[0][:3] == ["agent", "idle", "serverless"]
    answer = call("invoke_endpoint", endpoint="agent", message="Order 5 ships on day", max_tokens=4)
    assert answer.text.startswith("`replies-sft@1` on `agent` answered (4 tokens") and "cold start" in answer.text
    assert call("stop_endpoint", endpoint="agent").text == "endpoint `agent` is stopped"
    with pytest.raises(UserError, match="already stopped"):
        call("stop_endpoint", endpoint="agent")
    endpoints.delete(ws, "agent")

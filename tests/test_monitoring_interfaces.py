"""`lathe monitors …` and the agent's monitoring tools, on a real workspace with recorded traffic."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from core.errors import UserError
from cli.main import app
from runtimes.monitoring.traffic import record
from tools.registry import ToolRegistry
from tools.risk import Risk
from tests.test_monitoring_monitors import requests

pytestmark = pytest.mark.slow

def lathe(ws, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(ws.root), "monitors", *args])


def recent_traffic(ws) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    record(ws, requests(now - dt.timedelta(days=2), 60, seed=51))
    record(ws, requests(now - dt.timedelta(days=1), 60, shifted=True, seed=52))


def test_cli_create_run_show_alerts(workspace):
    recent_traffic(workspace)
    out = lathe(workspace, "create", "tickets-drift", "--endpoint", "tickets", "--rule", "drift:response_length",
                "--rule", "p95_latency>5000", "--every", "1h")
    assert out.exit_code == 0, out.output
    assert "alerts on: drift of response_length; p95 latency above 5000 ms" in out.output
    listed = json.loads(lathe(workspace, "list", "--json").output)
    assert [m["name"] for m in listed] == ["tickets-drift"]

    ran = lathe(workspace, "run", "tickets-drift")
    assert ran.exit_code == 0, ran.output
    assert "alert: response_length drifted on `tickets`" in ran.output and "report.md" in ran.output
    assert "no monitor is due" in lathe(workspace, "run", "--due").output

    alerts = json.loads(lathe(workspace, "alerts", "--since", "1h", "--json").output)
    assert [a["feature"] for a in alerts] == ["response_length"]
    assert lathe(workspace, "ack", alerts[0]["id"]).exit_code == 0
    assert json.loads(lathe(workspace, "alerts", "--open", "--json").output) == []
    shown = json.loads(lathe(workspace, "show", "tickets-drift", "--json").output)
    assert shown["runs"][0]["status"] == "alert" and shown["alerts"][0]["acknowledged_at"]


def test_cli_refuses_bad_input_plainly(workspace):
    bad = lathe(workspace, "create", "x", "--endpoint", "e", "--rule", "latency is bad")
    assert bad.exit_code == 2 and "is not a rule" in bad.output
    assert "no monitor `nope`" in lathe(workspace, "run", "nope").output
    assert "name a monitor to run, or pass --due" in lathe(workspace, "run").output
    assert "--since" in lathe(workspace, "alerts", "--since", "lately").output
    assert "ingested 0 requests" in lathe(workspace, "ingest").output


def test_tools_create_report_and_list_alerts(workspace):
    recent_traffic(workspace)
    registry = ToolRegistry.discover()
    tools = registry.bind(workspace)
    assert registry.risk("create_monitor") == Risk.write
    assert registry.risk("endpoint_report") == registry.risk("list_alerts") == Risk.read

    def call(tool_name: str, /, **args):
        tool = tools[tool_name]
        return tool.run_validated(tool.schema().model_validate(args))

    created = call("create_monitor", name="length-watch", endpoint="tickets", rules=["drift:response_length"])
    assert "alerts on: drift of response_length" in created.text
    assert "every 1h" in tools["create_monitor"].estimate(
        tools["create_monitor"].schema().model_validate({"name": "n", "endpoint": "tickets"}))

    week = call("endpoint_report", endpoint="tickets", period="7d")
    assert "120 requests" in week.text and week.result is not None
    assert call("list_alerts").text == "no alerts in the last 7d"  # an ad-hoc report raises none

    ran = call("endpoint_report", monitor="length-watch")
    assert "alert: response_length drifted" in ran.text
    listed = call("list_alerts", endpoint="tickets")
    assert listed.text.startswith("1 alert in the last 7d") and listed.result.rows[0][3] == "response_length"
    with pytest.raises(UserError, match="exactly one of an endpoint"):
        call("endpoint_report")
    with pytest.raises(UserError, match="not a rule"):
        call("create_monitor", name="x", endpoint="tickets", rules=["sometimes"])

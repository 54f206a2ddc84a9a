"""Tools for watching endpoints from the chat: create a monitor (drift, latency, error-rate and quality rules on a
schedule), report how an endpoint or a monitor is doing over a period, and list the alerts raised.

Thin wrappers over `runtimes/monitoring/`: only `create_monitor` stores anything; the report tool may ingest
spooled traffic and writes its plots under `runs/`, but changes no monitor, alert or model.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from core.errors import UserError
from catalog.results import QueryResult
from runtimes.monitoring.monitors import MonitorSpec
from tools.base import LatheTool, ToolArgs, ToolOutput, principal_or_local, spec_fields
from tools.risk import Risk


# A monitor's spec, with its rules in their short written form.
CreateMonitorArgs = create_model(
    "CreateMonitorArgs", __base__=ToolArgs, **spec_fields(MonitorSpec, exclude=("rules",)),
    rules=(list[str], Field(default_factory=lambda: ["dataset_drift"], description=(
        "when to alert, each one of: drift:FEATURE (e.g. drift:response_length), dataset_drift, data_quality, "
        "p95_latency>MS, error_rate>SHARE, accuracy<VALUE, mean_score<VALUE"))))


class CreateMonitor(LatheTool):
    name: str = "create_monitor"
    description: str = ("Create a monitor on an endpoint: it runs on a schedule, tests drift of the traffic's features "
                        "(Evidently's default tests) against the previous window or the model's training data, and "
                        "raises alerts for its rules (e.g. drift:response_length, p95_latency>2000, accuracy<0.8).")
    args_schema: type[BaseModel] = CreateMonitorArgs
    risk = Risk.write

    def estimate(self, args: BaseModel) -> str:
        a = CreateMonitorArgs.model_validate(args.model_dump())
        return f"one monitor on `{a.endpoint}`, running every {a.every} over the last {a.window}"

    def _run(self, **args: Any) -> ToolOutput:
        from runtimes.monitoring.monitors import Rule, create_monitor

        a = CreateMonitorArgs(**args)
        spec = MonitorSpec.parse({**a.model_dump(exclude={"rules"}, exclude_none=True),
                                  "rules": [Rule.parse(r).model_dump() for r in a.rules]})
        row = create_monitor(self.workspace, spec, created_by=principal_or_local(self.principal).name)
        rules = "; ".join(r.text() for r in spec.rules)
        against = f"the training data of {spec.model}" if spec.reference == "baseline" else "the window before"
        return ToolOutput(text=f"monitor `{row.name}` ({row.id}) watches `{spec.endpoint}` every {spec.every} over "
                               f"the last {spec.window}, against {against}; it alerts on: {rules}. Its first run is "
                               "due now.", data={"monitor": row.to_json()})


class EndpointReportArgs(ToolArgs):
    endpoint: str | None = Field(None, description="the endpoint to report on (give this or `monitor`)")
    monitor: str | None = Field(None, description="or a monitor's name or id: run it now, with its rules and alerts")
    period: str = Field("7d", description="the period to look at, ending now: 1h, 1d, 7d (\"this week\": 7d)")
    reference: Literal["previous_window", "baseline"] = "previous_window"
    model: str | None = Field(None, description="for a baseline reference: NAME@VERSION")


class EndpointReport(LatheTool):
    name: str = "endpoint_report"
    description: str = ("How an endpoint is doing over a period: requests, error rate, latency percentiles, drift of "
                        "its traffic's features against the period before (or the training data), quality from "
                        "feedback and per-group figures, with a report and plots. Or run a named monitor now.")
    args_schema: type[BaseModel] = EndpointReportArgs
    risk = Risk.read

    def _run(self, endpoint: str | None = None, monitor: str | None = None, period: str = "7d",
             reference: str = "previous_window", model: str | None = None) -> ToolOutput:
        from runtimes.monitoring.monitors import endpoint_report, run_monitor

        if (endpoint is None) == (monitor is None):
            raise UserError("name exactly one of an endpoint (how is it doing?) and a monitor (run it now)")
        if monitor is not None:
            run = run_monitor(self.workspace, monitor)
        else:
            run = endpoint_report(self.workspace, endpoint or "", period=period, reference=reference, model=model)
        return ToolOutput(text=run.describe() + f"\nreport: {run.report_dir}/report.md",
                          result=_latency_table(run.summary), data=run.to_json())


class ListAlertsArgs(ToolArgs):
    since: str | None = Field("7d", description="only alerts raised in this last period (1h, 1d, 7d); null: all")
    monitor: str | None = Field(None, description="only this monitor's (name or id)")
    endpoint: str | None = Field(None, description="only this endpoint's")
    open_only: bool = Field(False, description="only alerts nobody has acknowledged")


class ListAlerts(LatheTool):
    name: str = "list_alerts"
    description: str = "List the alerts monitors raised (newest first): what drifted, by how much, with which test."
    args_schema: type[BaseModel] = ListAlertsArgs
    risk = Risk.read

    def _run(self, since: str | None = "7d", monitor: str | None = None, endpoint: str | None = None,
             open_only: bool = False) -> ToolOutput:
        from runtimes.monitoring.monitor_store import MonitorStore
        from runtimes.monitoring.monitors import duration_s

        store = MonitorStore(self.workspace)
        try:
            start = dt.datetime.now(dt.timezone.utc).timestamp() - duration_s(since) if since else None
        except ValueError as e:
            raise UserError(f"since: {e}") from None
        monitor_id = store.get(monitor).id if monitor else None
        alerts = store.alerts(monitor_id=monitor_id, endpoint=endpoint, since=start, open_only=open_only)
        rows = [[dt.datetime.fromtimestamp(a.created_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M"), a.endpoint,
                 a.rule, a.feature, a.test, a.statistic, a.threshold, a.message, a.id] for a in alerts]
        result = QueryResult(sql="", columns=["raised (UTC)", "endpoint", "rule", "feature", "test", "statistic",
                                              "threshold", "message", "alert"], rows=rows)
        period = f" in the last {since}" if since else ""
        if not alerts:
            return ToolOutput(text=f"no alerts{period}", result=result, data={"alerts": []})
        lines = [f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}{period}:"] + [f"- {a.message}" for a in alerts[:10]]
        return ToolOutput(text="\n".join(lines), result=result, data={"alerts": [a.to_json() for a in alerts]})


def _latency_table(summary: dict[str, Any]) -> QueryResult | None:
    """The window's latency percentiles, the rows of the answer's plot; None without traffic."""
    ops = summary.get("traffic") or {}
    if not ops.get("requests"):
        return None
    return QueryResult(sql="", columns=["Percentile", "Latency (ms)"],
                       rows=[[p, float(ops[f"latency_{p}_ms"])] for p in ("p50", "p95", "p99")])


def run_due_monitors(ws: Any) -> int:
    """Run the monitors whose schedule is due (a front-end's loop calls this); returns how many ran."""
    from runtimes.monitoring.monitors import run_due

    return len(run_due(ws))


def alerts_after(ws: Any, since: float) -> list[dict[str, Any]]:
    """Alerts raised after `since` (a UNIX time), oldest first, as plain JSON."""
    from runtimes.monitoring.monitor_store import MonitorStore

    found = MonitorStore(ws).alerts(since=since)
    return sorted((a.to_json() for a in found if a.created_at > since), key=lambda a: a["created_at"])


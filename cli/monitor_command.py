"""`lathe monitors …`: create monitors on endpoints, run them now (`lathe scheduler` runs them on their
schedules), show their runs and list the alerts they raised; plus `baseline` (a model version's training-data
features) and `ingest`.

Monitoring libraries (pandas, scipy, matplotlib) are imported only when a command runs, so `lathe --help` stays fast.
"""
from __future__ import annotations

import datetime as dt

import typer

from cli.context import command, print_json, print_table, workspace

monitors_app = typer.Typer(help="Monitors on endpoints: create, list, show, run, alerts.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(monitors_app, name="monitors")


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else ""


@monitors_app.command("create")
@command
def monitors_create(
    name: str = typer.Argument(..., help="A name for the monitor, e.g. tickets-drift."),
    endpoint: str = typer.Option(..., "--endpoint", "-e", help="The endpoint to watch (batch / async for those paths)."),
    rules: list[str] = typer.Option([], "--rule", "-r", help="When to alert (repeatable): drift:FEATURE, dataset_drift, "
                                    "data_quality, p95_latency>MS, error_rate>SHARE, accuracy<VALUE, mean_score<VALUE. "
                                    "Default: dataset_drift."),
    reference: str = typer.Option("previous_window", "--reference", help="previous_window or baseline."),
    model: str | None = typer.Option(None, "--model", "-m", help="For a baseline: the deployed version, NAME@VERSION."),
    features: list[str] = typer.Option([], "--feature", "-f", help="A feature to test (repeatable); default: all "
                                       "the reference has."),
    window: str = typer.Option("1d", "--window", help="Traffic each run looks at: 30m, 1h, 1d, 7d."),
    every: str = typer.Option("1h", "--every", help="How often it runs: 30m, 1h, 1d."),
    min_rows: int = typer.Option(30, "--min-rows", help="Fewer answered requests than this: no drift test."),
    judge_model: str | None = typer.Option(None, "--judge-model", help="A LiteLLM model that scores each reply "
                                           "(adds the judge_score feature)."),
    judge_rubric: str = typer.Option("helpfulness", "--judge-rubric"),
    judge_api_base: str | None = typer.Option(None, "--judge-api-base"),
    sensitive: list[str] = typer.Option([], "--sensitive", help="A table model's input column whose groups are "
                                        "compared (repeatable; rule bias:COLUMN)."),
    labels: str | None = typer.Option(None, "--labels", help="A table model's outcomes: a table or query with its "
                                      "entity key, --label-time and --label-column (rule accuracy<VALUE)."),
    label_time: str | None = typer.Option(None, "--label-time", help="When each outcome was known."),
    label_column: str | None = typer.Option(None, "--label-column", help="The outcome column."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a monitor; its first run is due at once (run it with `run`, or keep `lathe scheduler` going). On an
    endpoint serving a table model, it compares the served rows with the model's training set."""
    from core.principal import Principal
    from runtimes.monitoring.monitors import MonitorSpec, Rule, create_monitor
    from runtimes.monitoring.tabular_monitors import spec_for_endpoint

    ws = workspace()
    spec = spec_for_endpoint(ws, {
        "name": name, "endpoint": endpoint, "features": features or None, "window": window, "every": every,
        "min_rows": min_rows, "sensitive": sensitive,
        "rules": [Rule.parse(r).model_dump() for r in rules] if rules else [{"kind": "dataset_drift"}]},
        labels=labels, label_time=label_time, label_column=label_column) or MonitorSpec.parse({
        "name": name, "endpoint": endpoint, "reference": reference, "model": model, "features": features or None,
        "window": window, "every": every, "min_rows": min_rows,
        "rules": [Rule.parse(r).model_dump() for r in rules] if rules else [{"kind": "dataset_drift"}],
        "judge": {"model": judge_model, "rubric": judge_rubric, "api_base": judge_api_base} if judge_model else None})
    row = create_monitor(ws, spec, created_by=Principal.local_admin().name)
    if as_json:
        print_json(row.to_json())
        return
    typer.echo(f"{row.id}: monitor `{row.name}` on `{row.endpoint}`, every {spec.every} over the last {spec.window}; "
               f"alerts on: {'; '.join(r.text() for r in spec.rules)}")


@monitors_app.command("list")
@command
def monitors_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """All monitors with their schedule and last outcome."""
    from runtimes.monitoring.monitor_store import MonitorStore

    monitors = MonitorStore(workspace()).list()
    if as_json:
        print_json([m.to_json() for m in monitors])
        return
    print_table(["monitor", "name", "endpoint", "reference", "every", "next run", "last run", "last status"],
                [[m.id, m.name, m.endpoint, m.spec.get("reference"), m.spec.get("every"),
                  _when(m.next_run_at) if m.enabled else "disabled", _when(m.last_run_at), m.last_status or ""]
                 for m in monitors])


@monitors_app.command("show")
@command
def monitors_show(monitor: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """One monitor: its settings, its latest runs and its alerts."""
    from runtimes.monitoring.monitor_store import MonitorStore

    store = MonitorStore(workspace())
    m = store.get(monitor)
    runs = store.runs(m.id, limit=10)
    alerts = store.alerts(monitor_id=m.id, limit=20)
    if as_json:
        print_json({**m.to_json(), "runs": [r.to_json() for r in runs], "alerts": [a.to_json() for a in alerts]})
        return
    print_table(["field", "value"], [[k, v] for k, v in {**m.to_json(), **m.spec}.items()
                                     if k != "spec" and v not in (None, "", [])], title=m.name)
    print_table(["run", "started", "status", "window start", "report"],
                [[r.id, _when(r.started_at), r.status if not r.error else f"{r.status}: {r.error}", r.window_start,
                  r.report_dir or ""] for r in runs], title="runs")
    if alerts:
        print_table(["raised", "rule", "message"], [[_when(a.created_at), a.rule, a.message] for a in alerts],
                    title="alerts")


@monitors_app.command("run")
@command
def monitors_run(monitor: str | None = typer.Argument(None, help="A monitor's name or id."),
                 due: bool = typer.Option(False, "--due", help="Run every monitor whose schedule is due instead."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Run a monitor now (ingesting spooled traffic first), or every due one with --due."""
    from core.errors import UserError
    from runtimes.monitoring.monitors import run_due, run_monitor

    ws = workspace()
    if (monitor is None) == (not due):
        raise UserError("name a monitor to run, or pass --due to run every due one (not both)")
    outcomes = run_due(ws) if due else [run_monitor(ws, monitor or "")]
    if as_json:
        print_json([o if isinstance(o, str) else o.to_json() for o in outcomes])
        return
    if not outcomes:
        typer.echo("no monitor is due")
    for o in outcomes:
        typer.echo(o if isinstance(o, str) else o.describe() + f"\nreport: {o.report_dir}/report.md")


@monitors_app.command("alerts")
@command
def monitors_alerts(monitor: str | None = typer.Option(None, "--monitor"),
                    endpoint: str | None = typer.Option(None, "--endpoint", "-e"),
                    since: str | None = typer.Option(None, "--since", help="Only the last period: 1h, 1d, 7d."),
                    open_only: bool = typer.Option(False, "--open", help="Only those not acknowledged."),
                    as_json: bool = typer.Option(False, "--json")) -> None:
    """Alerts raised by monitors, newest first."""
    from core.errors import UserError
    from runtimes.monitoring.monitor_store import MonitorStore
    from runtimes.monitoring.monitors import duration_s

    store = MonitorStore(workspace())
    try:
        start = dt.datetime.now(dt.timezone.utc).timestamp() - duration_s(since) if since else None
    except ValueError as e:
        raise UserError(f"--since: {e}") from None
    alerts = store.alerts(monitor_id=store.get(monitor).id if monitor else None, endpoint=endpoint, since=start,
                          open_only=open_only)
    if as_json:
        print_json([a.to_json() for a in alerts])
        return
    print_table(["alert", "raised", "endpoint", "rule", "message", "acknowledged"],
                [[a.id, _when(a.created_at), a.endpoint, a.rule, a.message, _when(a.acknowledged_at)] for a in alerts])


@monitors_app.command("ack")
@command
def monitors_ack(alert_id: str) -> None:
    """Acknowledge an alert."""
    from runtimes.monitoring.monitor_store import MonitorStore

    MonitorStore(workspace()).acknowledge(alert_id)
    typer.echo(f"{alert_id}: acknowledged")


@monitors_app.command("delete")
@command
def monitors_delete(monitor: str) -> None:
    """Delete a monitor (its past runs and alerts stay on record)."""
    from runtimes.monitoring.monitor_store import MonitorStore

    m = MonitorStore(workspace()).delete(monitor)
    typer.echo(f"{m.id}: monitor `{m.name}` deleted")


@monitors_app.command("baseline")
@command
def monitors_baseline(model: str = typer.Argument(..., help="The registered version, NAME@VERSION."),
                      as_json: bool = typer.Option(False, "--json")) -> None:
    """Compute (again) the traffic features of a model version's training data, the reference of baseline monitors."""
    from runtimes.monitoring.baselines import build_baseline

    base = build_baseline(workspace(), model)
    if as_json:
        print_json(base.to_json())
        return
    typer.echo(f"baseline of {base.model}: {base.rows:,} training examples ({base.mapping}) → {base.path}")
    for w in base.warnings:
        typer.echo(f"warning: {w}", err=True)


@monitors_app.command("ingest")
@command
def monitors_ingest() -> None:
    """Move captured traffic and feedback from the spool into the warehouse now (monitors do it on each run)."""
    from runtimes.monitoring.traffic import ingest

    typer.echo(f"ingested {ingest(workspace()):,} requests into endpoint_traffic")

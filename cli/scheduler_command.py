"""`lathe scheduler`: runs the workspace's schedules (monitors) in the foreground until Ctrl-C, printing each run.
The chat UI runs the same scheduler in its own process; both may run at once on one workspace.
"""
from __future__ import annotations

import typer

from cli.context import command, workspace


def register(app: typer.Typer) -> None:
    app.command("scheduler")(command(scheduler))


def scheduler() -> None:
    """Run monitors on their schedules until interrupted (Ctrl-C); missed runs run once at start."""
    import signal
    import threading

    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    from runtimes.scheduling.monitor_schedules import PREFIX, start_monitor_schedules
    from runtimes.scheduling.scheduler import build_scheduler, scheduler_path, stop as stop_scheduler

    ws = workspace()
    sched = build_scheduler(ws)
    start_monitor_schedules(sched, ws)

    def said(event) -> None:
        if not event.job_id.startswith(PREFIX):
            return
        if event.exception is not None:
            typer.echo(f"{event.job_id} failed: {type(event.exception).__name__}: {event.exception}", err=True)
        elif event.retval is not None:
            run = event.retval
            typer.echo(f"{run.monitor}: {run.status}" + "".join(f"\n  alert: {a.message}" for a in run.alerts),
                       err=False)

    sched.add_listener(said, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    stop = threading.Event()
    # Both signals set the flag, and the wait wakes each second: a signal the kernel hands to one of the
    # scheduler's threads is acted on by the main thread at its next wake, never an hour later.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sched.start()
    typer.echo(f"scheduler running on {scheduler_path(ws)}; Ctrl-C stops")
    while not stop.wait(1):
        pass
    typer.echo("stopping: a run in progress finishes first")
    stop_scheduler(sched)
    typer.echo("stopped")

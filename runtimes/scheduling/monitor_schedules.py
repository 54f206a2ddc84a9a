"""Each enabled monitor of the monitor store as a scheduled job (`monitor:ID`, every `every`, next at the store's
next-run time), kept in step with the store by a sync job in the scheduler itself, and the run function it calls.

The monitor store stays the truth of when a monitor is due: a scheduled run claims its due time there first, so two
schedulers on one workspace (the UI and `lathe scheduler`) never run a monitor twice for one due time.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.workspace import Workspace
from runtimes.monitoring.monitor_store import MonitorStore
from runtimes.monitoring.monitors import MonitorRun, duration_s, run_if_due
from runtimes.scheduling.scheduler import schedule

PREFIX = "monitor:"
RUN = "runtimes.scheduling.monitor_schedules:run_scheduled"
SYNC_ID = "monitors:sync"
SYNC_S = 10.0  # how soon a monitor created, changed or deleted elsewhere is (un)scheduled


def start_monitor_schedules(scheduler: BaseScheduler, ws: Workspace) -> None:
    """Keep `scheduler`'s monitor jobs in step with the store: now (once started) and every SYNC_S seconds."""
    scheduler.add_job(sync_monitors, IntervalTrigger(seconds=SYNC_S), args=[scheduler, ws], id=SYNC_ID,
                      jobstore="memory", next_run_time=dt.datetime.now(dt.timezone.utc), replace_existing=True)


def sync_monitors(scheduler: BaseScheduler, ws: Workspace) -> None:
    """Add a job for each enabled monitor, move its next run to the store's, drop jobs of monitors gone or disabled."""
    wanted = {f"{PREFIX}{m.id}": m for m in MonitorStore(ws).list() if m.enabled}
    for job in scheduler.get_jobs(jobstore="default"):
        if job.id.startswith(PREFIX) and job.id not in wanted:
            try:
                scheduler.remove_job(job.id, jobstore="default")
            except JobLookupError:
                pass  # another scheduler removed it
    for job_id, m in wanted.items():
        every = _every_s(m.spec)
        due = dt.datetime.fromtimestamp(m.next_run_at, dt.timezone.utc)
        job = scheduler.get_job(job_id, jobstore="default")
        if job is None or job.trigger.interval.total_seconds() != every:
            schedule(scheduler, job_id, RUN, IntervalTrigger(seconds=every, start_date=due),
                     [str(ws.root), m.id], first_run=due, replace=job is not None)
        elif job.next_run_time is not None and abs(job.next_run_time.timestamp() - m.next_run_at) > 1.0:
            # Run by hand (`lathe monitors run`) or by another scheduler: the store says when it is next due.
            try:
                job.modify(next_run_time=due)
            except JobLookupError:
                pass


def run_scheduled(workspace_root: str, monitor_id: str) -> MonitorRun | None:
    """A monitor's scheduled run: once for its latest due time, by the one scheduler that claims it."""
    return run_if_due(Workspace(Path(workspace_root)), monitor_id)


def _every_s(spec: dict[str, Any]) -> float:
    try:
        return duration_s(spec.get("every", "1h"))
    except ValueError:
        return 3600.0  # a damaged schedule still moves on; its run reports what is wrong

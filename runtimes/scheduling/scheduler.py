"""The scheduler of a workspace: APScheduler 3 with its SQLAlchemy job store on `scheduler.sqlite` (so schedules
survive restarts), and `schedule`, which puts any callable, named `module:function`, with its arguments on a trigger.

Missed runs coalesce into one run however late the scheduler starts; one job never runs twice at once in one
scheduler. Work that must run once across several schedulers on one workspace claims its due time itself.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger

from core.state_db import BUSY_TIMEOUT_S, ensure_schema
from core.workspace import Workspace

# Scheduled runs at once in one process: one, since runs open the DuckDB warehouse and one process cannot hold it
# for writing (ingest) and reading (another run) with two configurations at once.
WORKERS = 1


def scheduler_path(ws: Workspace) -> Path:
    return ws.root / "scheduler.sqlite"


def build_scheduler(ws: Workspace) -> BaseScheduler:
    """A scheduler (not started) whose `default` job store is the workspace's file and whose `memory` store holds
    jobs that only make sense in this process (they may carry live objects)."""
    path = scheduler_path(ws.require())
    ensure_schema(path, "")  # the file in WAL mode, so two schedulers read while one writes
    store = SQLAlchemyJobStore(url=f"sqlite:///{path}", engine_options={"connect_args": {"timeout": BUSY_TIMEOUT_S}})
    return BackgroundScheduler(
        jobstores={"default": store, "memory": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(WORKERS)},
        # None: a run missed while nothing was running still runs (once, coalesced) when a scheduler starts.
        job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        timezone=dt.timezone.utc)


def stop(scheduler: BaseScheduler) -> None:
    """Start no more runs; a run in progress finishes in its thread (the process waits for it as it exits). Not
    `shutdown(wait=True)`: APScheduler holds its job-store lock while it waits, so a running job that reads the
    schedule (`sync_monitors` does) would wait on that lock for ever."""
    scheduler.shutdown(wait=False)


def schedule(scheduler: BaseScheduler, job_id: str, target: str, trigger: BaseTrigger, args: Sequence[Any] = (), *,
             first_run: dt.datetime | None = None, replace: bool = False) -> bool:
    """Run `target` (`module:function`) with `args` on `trigger` under `job_id`, first at `first_run` (a time in the
    past runs at once) else when the trigger says. False when the job exists and `replace` is not set (another
    scheduler on the workspace registered it first)."""
    extra = {} if first_run is None else {"next_run_time": first_run}
    try:
        scheduler.add_job(target, trigger, args=list(args), id=job_id, name=job_id, replace_existing=replace, **extra)
    except ConflictingIdError:
        return False
    return True

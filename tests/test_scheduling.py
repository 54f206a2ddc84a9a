"""The workspace's scheduler on its real SQLite job store: any callable on a schedule, kept across restarts;
monitors run on their schedules, missed runs coalesced into one at start, and each due time run once even when two
schedulers (this process and `lathe scheduler`) share the workspace."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.triggers.interval import IntervalTrigger

from runtimes.monitoring.monitor_store import MonitorStore
from runtimes.monitoring.monitors import create_monitor
from runtimes.monitoring.traffic import TrafficRecord, record
from runtimes.scheduling.monitor_schedules import PREFIX, run_scheduled, start_monitor_schedules
from runtimes.scheduling.scheduler import build_scheduler, schedule, scheduler_path, stop
from tests.waiting import cpu_seconds, wait_for

ROOT = Path(__file__).resolve().parent.parent
HOUR = 3600.0


def tick(path: str, label: str) -> None:
    """A scheduled callable of no particular kind: one line per run."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(label + "\n")


def _traffic(ws, n: int = 40) -> None:
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)
    record(ws, [TrafficRecord(request_id=f"r{i}", endpoint="tickets", model="tiny@1", route="chat",
                              ts=start + dt.timedelta(minutes=4 * i), prompt=f"user: where is order {i}?",
                              response="It ships tomorrow.", prompt_tokens=9, completion_tokens=4, latency_ms=120.0)
                for i in range(n)])


def _runs(ws) -> dict[str, list]:
    store = MonitorStore(ws)
    return {m.name: store.runs(m.id, limit=100) for m in store.list()}


def _progress(ws) -> Callable[[], Any]:
    return lambda: sorted((name, r.id, r.status) for name, runs in _runs(ws).items() for r in runs)


def test_a_callable_runs_every_second_from_the_workspace_store_and_survives_a_restart(workspace, tmp_path):
    out = tmp_path / "ticks.txt"
    out.touch()
    lines = lambda: out.read_text().splitlines()  # noqa: E731
    first = build_scheduler(workspace)
    first.start()
    try:
        assert schedule(first, "ticker", "tests.test_scheduling:tick", IntervalTrigger(seconds=1), [str(out), "a"])
        assert not schedule(first, "ticker", "tests.test_scheduling:tick", IntervalTrigger(seconds=1), [str(out), "b"])
        wait_for(lambda: len(lines()) >= 3, progress=lambda: len(lines()))
    finally:
        stop(first)
    assert scheduler_path(workspace).is_file() and set(lines()) == {"a"}  # the refused second one never ran

    # A new scheduler (a restarted process) finds the job in the workspace and goes on with it.
    before = len(lines())
    second = build_scheduler(workspace)
    second.start()
    try:
        assert [j.id for j in second.get_jobs(jobstore="default")] == ["ticker"]
        wait_for(lambda: len(lines()) >= before + 2, progress=lambda: len(lines()))
    finally:
        stop(second)


def test_missed_runs_coalesce_into_one_run_at_start(workspace):
    _traffic(workspace)
    created = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3, minutes=10)
    m = create_monitor(workspace, {"name": "hourly", "endpoint": "tickets", "every": "1h"}, now=created)
    executed: list[Any] = []
    sched = build_scheduler(workspace)
    sched.add_listener(lambda e: executed.append(e) if e.job_id == PREFIX + m.id else None, EVENT_JOB_EXECUTED)
    start_monitor_schedules(sched, workspace)
    sched.start()
    try:
        # Done when the run is recorded and the scheduler's job waits for the next due time, in the future.
        def settled() -> bool:
            job = sched.get_job(PREFIX + m.id)
            return bool(executed) and job is not None and job.next_run_time.timestamp() > time.time()

        wait_for(settled, progress=_progress(workspace))
        job_next = sched.get_job(PREFIX + m.id).next_run_time.timestamp()
    finally:
        stop(sched)
    (run,) = _runs(workspace)["hourly"]  # 72 missed hours, one run
    assert run.status == "ok" and len(executed) == 1
    due = MonitorStore(workspace).get(m.id).next_run_at - HOUR
    # The run claimed the latest due time (on the monitor's hourly grid); the next one is an hour later, and the
    # run itself looked at the traffic up to when it ran.
    assert (due - created.timestamp()) % HOUR == 0 and 0 <= time.time() - due < HOUR and job_next == due + HOUR
    assert dt.datetime.fromisoformat(run.window_end).timestamp() >= due


def test_a_due_time_is_claimed_by_one_runner_only(workspace):
    _traffic(workspace)
    m = create_monitor(workspace, {"name": "contended", "endpoint": "tickets", "every": "1h"},
                       now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
    gate = threading.Barrier(6)
    outcomes: list[Any] = []

    def runner() -> None:
        gate.wait()
        outcomes.append(run_scheduled(str(workspace.root), m.id))

    threads = [threading.Thread(target=runner) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 6 and sum(o is not None for o in outcomes) == 1
    assert len(_runs(workspace)["contended"]) == 1


def test_two_schedulers_on_one_workspace_run_each_due_time_once(workspace):
    _traffic(workspace)
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=5, minutes=1)
    names = [f"m{i}" for i in range(3)]
    for name in names:
        create_monitor(workspace, {"name": name, "endpoint": "tickets", "every": "1h"}, now=past)
    cli = subprocess.Popen([sys.executable, "-m", "cli.main", "--workspace", str(workspace.root), "scheduler"],
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(iter(cli.stdout.readline, "")), daemon=True)
    reader.start()
    wait_for(lambda: any("scheduler running" in line for line in said) or cli.poll() is not None,
             progress=lambda: (len(said), cpu_seconds([cli.pid])))
    assert cli.poll() is None, "".join(said)
    here = build_scheduler(workspace)
    start_monitor_schedules(here, workspace)
    here.start()
    try:
        def all_ran() -> bool:
            runs = _runs(workspace)
            return all(runs.get(n) and all(r.finished_at for r in runs[n]) for n in names)

        wait_for(all_ran, progress=_progress(workspace))

        # Settled when both schedulers see every monitor job next due in the future (each has had its chance).
        def settled() -> bool:
            jobs = [j for j in here.get_jobs(jobstore="default") if j.id.startswith(PREFIX)]
            return len(jobs) == len(names) and all(j.next_run_time.timestamp() > time.time() for j in jobs)

        wait_for(settled, progress=_progress(workspace))
    finally:
        stop(here)
        cli.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            wait_for(lambda: cli.poll() is not None, progress=lambda: (len(said), cpu_seconds([cli.pid])),
                     what="the scheduler to stop after Ctrl-C")
        finally:
            if cli.poll() is None:
                cli.kill()
        reader.join(timeout=60)
    output = "".join(said)
    assert cli.returncode == 0 and output.rstrip().endswith("stopped"), output
    runs = _runs(workspace)
    assert {n: [r.status for r in runs[n]] for n in names} == {n: ["ok"] for n in names}, output
    assert len({MonitorStore(workspace).get(runs[n][0].monitor_id).next_run_at for n in names}) == 1  # one due time


def test_the_chat_ui_process_runs_monitors_on_their_schedule(workspace, tmp_path):
    from tests.ui_server import ui_server

    _traffic(workspace)
    m = create_monitor(workspace, {"name": "in-ui", "endpoint": "tickets", "every": "1h"},
                       now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
    log = tmp_path / "ui.log"
    with ui_server(workspace.root, log):
        wait_for(lambda: [r for r in MonitorStore(workspace).runs(m.id) if r.finished_at],
                 progress=lambda: (log.stat().st_size, _progress(workspace)()))
    (run,) = MonitorStore(workspace).runs(m.id)
    assert run.status == "ok" and MonitorStore(workspace).get(m.id).next_run_at > time.time()


def test_stopping_while_a_running_job_reads_the_schedule_does_not_hang(workspace):
    """APScheduler's `shutdown(wait=True)` holds its job-store lock while it waits for running jobs: a job that then
    reads the schedule (as `sync_monitors` does) would wait for ever. `stop` must return, and the job finish."""
    from apscheduler.schedulers.base import STATE_STOPPED

    sched = build_scheduler(workspace)
    started, go, finished = threading.Event(), threading.Event(), threading.Event()

    def reads_the_schedule() -> None:
        started.set()
        go.wait(600)
        sched.get_jobs(jobstore="default")
        finished.set()

    sched.add_job(reads_the_schedule, jobstore="memory", next_run_time=dt.datetime.now(dt.timezone.utc))
    sched.start()
    wait_for(started.is_set, what="the job to start")
    stopper = threading.Thread(target=stop, args=[sched], daemon=True)
    stopper.start()
    wait_for(lambda: sched.state == STATE_STOPPED, what="the scheduler to stop")
    # Let the job read the schedule once `stop` is done, or while it still holds the store's lock (the hang).
    wait_for(lambda: not stopper.is_alive() or _held(sched._jobstores_lock), what="stop to return or hold the lock")
    go.set()
    wait_for(finished.is_set, what="the running job to finish")
    stopper.join(60)
    assert not stopper.is_alive()


def _held(lock: Any) -> bool:
    """Whether another thread holds `lock` now."""
    if lock.acquire(blocking=False):
        lock.release()
        return False
    return True

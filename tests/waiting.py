"""Waiting in tests by progress, not by the clock: keep waiting while something observable still changes (a job's
step, a log's size, a process's CPU time, a page's text) and fail only after it stood still for `stall_s`,
saying what was last seen. A busy machine makes work slower, not stuck; only a stuck wait fails.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

STALL_S = 120.0  # nothing observable changed for this long: stuck, whatever the machine's load


def wait_for(condition: Callable[[], T], *, progress: Callable[[], Any] | None = None, stall_s: float = STALL_S,
             poll_s: float = 0.05, what: str = "the condition") -> T:
    """`condition()`'s first truthy value; waits while `progress()` keeps changing (with no progress reading,
    `stall_s` is a plain limit). Fails with the last reading after `stall_s` without a change."""
    last = progress() if progress else None
    changed = time.monotonic()
    while True:
        value = condition()
        if value:
            return value
        if progress is not None:
            seen = progress()
            if seen != last:
                last, changed = seen, time.monotonic()
        if time.monotonic() - changed > stall_s:
            shown = repr(last)
            shown = shown if len(shown) <= 600 else shown[:300] + " … " + shown[-300:]
            raise AssertionError(f"waited for {what}: no progress for {stall_s:g} s; last seen: {shown}")
        time.sleep(poll_s)


def files_state(*paths: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime) of every file under `paths` (files or folders): changes while anything is written."""
    found: list[tuple[str, int, int]] = []
    for p in paths:
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            try:
                st = f.stat()
            except OSError:  # written and removed between listing and reading
                continue
            if not f.is_dir():
                found.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(found)


def cpu_seconds(pids: Iterable[int | None]) -> float:
    """CPU seconds used so far by these processes and their children (a process that computes is progressing)."""
    import psutil

    total = 0.0
    for pid in pids:
        if not pid:
            continue
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:  # gone: it no longer progresses
            continue
    return round(total, 1)


JOB_STALL_S = 600.0  # no job of the workspace changed for this long: stuck, not slow


def jobs_state(ws: Any) -> list[tuple[Any, ...]]:
    """Every job's status, progress, attempt and last event: changes while any job of the workspace advances."""
    from runtimes.jobs.store import JobStore

    store = JobStore(ws)
    return [(j.status, j.progress, j.attempt, store.last_event_seq(j.id)) for j in store.list()]


def until(condition: Callable[[], T], ws: Any, poll_s: float = 0.02, stall_s: float = JOB_STALL_S) -> T:
    """`condition()`'s first truthy value, waited for as long as any job of the workspace advances."""
    return wait_for(condition, progress=lambda: jobs_state(ws), stall_s=stall_s, poll_s=poll_s,
                    what="the jobs to get there")


def wait_for_job(ws: Any, job_id: str, stall_s: float = 180.0) -> Any:
    """A fine-tuning job once final; waits while its status, step, events, run files or worker CPU move."""
    from runtimes.jobs.store import FINAL, JobStore

    store = JobStore(ws)

    def final() -> Any:
        job = store.get(job_id)
        return job if job.status in FINAL else None

    def progress() -> tuple[Any, ...]:
        job = store.get(job_id)
        return (job.status, job.step, len(store.events(job_id)), files_state(ws.root / "runs" / job_id),
                cpu_seconds([job.pid]))

    return wait_for(final, progress=progress, stall_s=stall_s, what=f"job {job_id} to end")


def communicate(proc: subprocess.Popen, stall_s: float = STALL_S) -> tuple[Any, Any]:
    """`proc.communicate()` once the process ends; waits while it (or a child) keeps using CPU."""
    result: list[tuple[Any, Any]] = []

    def ended() -> bool:
        try:
            result.append(proc.communicate(timeout=0.2))
            return True
        except subprocess.TimeoutExpired:
            return False

    wait_for(ended, progress=lambda: cpu_seconds([proc.pid]), stall_s=stall_s, poll_s=0,
             what=f"process {proc.args!r:.200} to end")
    return result[0]


def run(argv: list[str], *, capture_output: bool = False, check: bool = False, stall_s: float = STALL_S,
        **popen: Any) -> subprocess.CompletedProcess:
    """`subprocess.run` without its fixed `timeout`: waits while the process (or a child) keeps using CPU."""
    if capture_output:
        popen.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with subprocess.Popen(argv, **popen) as proc:
        try:
            out, err = communicate(proc, stall_s=stall_s)
        except BaseException:
            proc.kill()
            raise
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done

"""The job process of every kind: `python -m runtimes.jobs.worker JOB_ID --workspace WS`. It loads the job, takes its
lock, counts the attempt, runs the kind's work with the plan stored at submit and records how it ended.

SIGTERM means "stop soon": the work saves what it has and the job ends `cancelled`, resumable. It never prompts;
every failure ends the job `failed` with the reason.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from core.errors import UserError
from core.offline import apply_offline_env
from core.workspace import Workspace
from runtimes.jobs.store import Job, JobStore


class Stopped(Exception):
    """A stop was asked for before the work had anything to save."""


class StopFlag:
    """Set by SIGTERM; the work reads it at each safe point. `since` is when (monotonic seconds)."""

    def __init__(self) -> None:
        self.requested = False
        self.since: float | None = None

    def request(self) -> None:
        self.since = self.since or time.monotonic()
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise Stopped


@dataclass
class WorkerRun:
    """What a kind's work gets: the workspace, the store, the job (its stored plan in `job.plan`) and the stop flag."""
    ws: Workspace
    store: JobStore
    job: Job
    stop: StopFlag

    @property
    def folder(self) -> Path:
        from runtimes.jobs.lifecycle import job_dir

        return job_dir(self.ws, self.job.id)

    def running(self, message: str, **data: object) -> bool:
        """Mark the job running; False when it was cancelled meanwhile."""
        return self.store.set_status(self.job.id, "running", message, expect=("queued", "validating", "running"),
                                     data=dict(data) or None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtimes.jobs.worker")
    parser.add_argument("job_id")
    parser.add_argument("--workspace", default=None)
    args = parser.parse_args(argv)
    apply_offline_env()
    ws = Workspace.resolve(args.workspace).require()
    stop = StopFlag()
    signal.signal(signal.SIGTERM, lambda *_: stop.request())
    store = JobStore(ws)
    try:
        return run_job(ws, store, args.job_id, stop)
    finally:
        from runtimes.jobs.lifecycle import dispatch

        if not preempted(store, args.job_id, stop):  # a preempted machine is going away: start nothing on it
            dispatch(ws)  # the next queued job starts when this one ends


def preempted(store: JobStore, job_id: str, stop: StopFlag) -> bool:
    """A SIGTERM that no cancel asked for is the notice of a machine being taken away (spot, preemptible)."""
    return stop.requested and not store.get(job_id).stop_requested


def run_job(ws: Workspace, store: JobStore, job_id: str, stop: StopFlag) -> int:
    from runtimes.jobs.kinds import kind
    from runtimes.jobs.lifecycle import job_dir

    store.get(job_id)
    lock = _sole_worker(job_dir(ws, job_id) / "worker.lock")
    if isinstance(lock, int):  # two starts raced (a resume and a recovery): the first one runs the job
        print(f"{job_id} is already run by process {lock}; this one stops", flush=True)
        return 0
    job = store.start_attempt(job_id, os.getpid())
    if job.stop_requested:
        store.set_status(job_id, "cancelled", "cancelled before it began")
        return 0
    try:
        kind(job.kind).work(WorkerRun(ws, store, job, stop))
        return 0
    except Stopped:
        if preempted(store, job_id, stop):
            store.set_status(job_id, "queued", "preempted before its work began; it starts again when capacity "
                             "returns", data={"preempted": True})
        else:
            store.set_status(job_id, "cancelled", "cancelled before its work began")
        return 0
    except UserError as e:
        store.set_status(job_id, "failed", f"failed: {e}", error=str(e))
        return 1
    except Exception as e:  # a bug or a crash inside the work: recorded rather than left `running`
        store.add_event(job_id, "error", traceback.format_exc()[-4000:])
        store.set_status(job_id, "failed", f"failed: {type(e).__name__}: {e}", error=f"{type(e).__name__}: {e}")
        return 1


def _sole_worker(path: Path) -> IO[str] | int:
    """An exclusive lock on the job for this process's life (the kernel drops it when the process dies, SIGKILL
    too); the pid of the process holding it when it is taken."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        return int(holder) if holder.isdigit() else -1
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


if __name__ == "__main__":
    sys.exit(main())

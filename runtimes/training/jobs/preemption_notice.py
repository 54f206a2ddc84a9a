"""A training job told its machine is being taken away (SIGTERM that no cancel asked for): it checkpoints at the end
of the step in progress and goes back to the queue, to continue from that checkpoint when capacity returns. The
grace period (`grace_period_s`) bounds the wait: past it the worker leaves at once, its ranks with it, and the job
continues from its last complete checkpoint instead.

It decides only how a stop ends; the stop itself is the trainer's (a callback) or the ranks' agreement.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from runtimes.jobs.worker import WorkerRun
from runtimes.training.preemption import DEFAULT_GRACE_S


def grace_s(run: WorkerRun) -> float:
    return float(run.job.plan["settings"].get("grace_period_s", DEFAULT_GRACE_S))


def end_stopped(run: WorkerRun, tracking: Any, step: int, where: str = "") -> None:
    """A stop that ended in a checkpoint at `step`: `cancelled` when a cancel asked for it, else preempted."""
    store, job = run.store, run.job
    # Ranks may get the notice without their worker (torchrun forwards it): any stop no cancel asked for counts.
    if store.get(job.id).stop_requested:
        store.set_status(job.id, "cancelled", f"stopped at step {step} with a checkpoint{where}; "
                         "`lathe jobs resume` continues it")
        tracking.finish("KILLED")
        return
    took = time.monotonic() - run.stop.since if run.stop.since else None
    store.add_event(job.id, "preempted", f"preempted: checkpoint at step {step}{where}"
                    + (f" {took:.1f} s after the notice" if took is not None else "")
                    + f" (grace period {grace_s(run):g} s)",
                    {"step": step, "seconds_after_notice": took, "grace_period_s": grace_s(run)})
    store.set_status(job.id, "queued", f"preempted at step {step}; it continues from checkpoint-{step} when capacity "
                     "returns", data={"preempted": True})
    tracking.finish("KILLED")


class GraceWatch:
    """Arms on the notice; if the job has not finished its checkpoint `grace_period_s` later, the worker records
    where the job continues from and exits at once (its ranks die with it), rather than be killed mid-write."""

    def __init__(self, run: WorkerRun) -> None:
        self.run = run
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="grace-watch", daemon=True)

    def __enter__(self) -> GraceWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()

    def _watch(self) -> None:
        run = self.run
        while not self.done.wait(0.2):
            if run.stop.since is None or time.monotonic() < run.stop.since + grace_s(run):
                continue
            if run.store.get(run.job.id).stop_requested:
                return  # a cancel waits for its checkpoint however long it takes
            last = run.store.get(run.job.id).checkpoint
            run.store.add_event(run.job.id, "preempted", f"the grace period of {grace_s(run):g} s ran out before the "
                                "checkpoint was written; the job continues from "
                                + (Path(last).name if last else "the start"), {"grace_period_s": grace_s(run)})
            run.store.set_status(run.job.id, "queued", "preempted; it continues from "
                                 + (Path(last).name if last else "the start") + " when capacity returns",
                                 data={"preempted": True})
            os._exit(0)

"""The processes of a distributed job in tests: its ranks and torchrun, as the job records them, and whether a
process still runs."""
from __future__ import annotations

import psutil


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def rank_pids(store, job_id: str, attempt: int) -> list[int]:
    """The ranks of one attempt (rank 0 records them once all have joined), with the torchrun that started them."""
    ranks = [e for e in store.events(job_id) if e.kind == "ranks"]
    launches = [e for e in store.events(job_id) if e.kind == "launch"]
    if len(ranks) < attempt or len(launches) < attempt:
        return []
    return [*ranks[attempt - 1].data["pids"], launches[attempt - 1].data["launcher_pid"]]

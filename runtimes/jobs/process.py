"""Detached job processes, shared by every kind of job (training, batch inference): start a worker module as a
process of its own session with the offline environment, and tell whether a pid is still a given job's worker.

It never kills anything and never decides when a job runs; the lifecycle does.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.offline import OFFLINE_ENV
from core.workspace import Workspace

_ROOT = Path(__file__).resolve().parents[1]


def spawn_worker(ws: Workspace, module: str, job_id: str, log: Path) -> int:
    """`python -m MODULE JOB_ID --workspace WS`, its output appended to `log`; returns its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **OFFLINE_ENV,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "ab") as out:
        # A new session: the job survives the command that started it and its terminal's Ctrl-C.
        proc = subprocess.Popen([sys.executable, "-m", module, job_id, "--workspace", str(ws.root)], cwd=_ROOT,
                                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc.pid


def is_worker_alive(pid: int, job_id: str) -> bool:
    """The process exists, is not a zombie, and is this job's worker (a reused pid is not)."""
    import psutil

    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and job_id in " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False

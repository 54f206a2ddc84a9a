"""The worker's side of a job with several ranks: it hands the validated data to the ranks, starts them with
torchrun (standalone rendezvous on this machine) as its own child, turns its stop request into the flag file the
ranks agree on, and reads what rank 0 reports when they end.

It never sets up a process group (torchrun and the Trainer do) and never outlives its worker: torchrun dies with
the worker, and each rank with torchrun (`die_with_parent`).
"""
from __future__ import annotations

import ctypes
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.offline import OFFLINE_ENV
from runtimes.jobs.worker import WorkerRun

RANK_MODULE = "runtimes.training.jobs.rank_main"
_ROOT = Path(__file__).resolve().parents[3]
_PR_SET_PDEATHSIG = 1


def data_path(folder: Path) -> Path:
    return folder / "data" / "prepared.pkl"


def stop_flag(folder: Path) -> Path:
    return folder / "stop"


def result_path(folder: Path) -> Path:
    return folder / "ranks_result.json"


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux; elsewhere a no-op), so that no
    rank is left when its launcher is killed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def launch_ranks(run: WorkerRun, prepared: Any, processes: int, grace_s: int = 30) -> dict[str, Any]:
    """Run the job's ranks to their end; returns rank 0's report (`step`, `stopped`, `verdict`). Raises
    `RuntimeError` when a rank failed. A SIGTERM to torchrun reaches the ranks, which get `grace_s` to checkpoint."""
    folder = run.folder
    with open(data_path(folder), "wb") as f:
        pickle.dump(prepared, f)  # this job's own rows, read back by its own ranks only
    for stale in (stop_flag(folder), result_path(folder)):
        stale.unlink(missing_ok=True)
    env = {**os.environ, **OFFLINE_ENV,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env.setdefault("OMP_NUM_THREADS", str(max(1, cores // processes)))  # CPU ranks share the cores
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
           f"--shutdown-timeout={max(1, grace_s)}",
           "-m", RANK_MODULE, run.job.id, "--workspace", str(run.ws.root)]
    launcher = subprocess.Popen(cmd, cwd=_ROOT, env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    run.store.add_event(run.job.id, "launch", f"{processes} ranks started by torchrun (process {launcher.pid})",
                        {"launcher_pid": launcher.pid, "processes": processes})
    while launcher.poll() is None:
        if run.stop.requested and not stop_flag(folder).exists():
            stop_flag(folder).touch()  # every rank reads it at its next step's end and they agree to stop
        time.sleep(0.2)
    report = json.loads(result_path(folder).read_text(encoding="utf-8")) if result_path(folder).is_file() else None
    if report is not None and (launcher.returncode == 0 or report["stopped"]):
        return report  # ranks that checkpointed on a SIGTERM end well; torchrun itself exits with the signal
    raise RuntimeError(f"a rank of the job failed (torchrun exited with code {launcher.returncode}); its "
                       f"traceback is in {folder / 'worker.log'}")

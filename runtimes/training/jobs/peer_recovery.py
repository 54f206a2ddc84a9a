"""The worker's side of a job with peer recovery (`recovery` = peer): it runs a torchft Lighthouse, starts one
process per rank (each a replica group of its own, `peer_replica`), and when a rank dies while others live, starts
a replacement that receives the state from a healthy peer; the loss, the replacement and the healing become the
job's events. A stop request becomes the flag file the ranks agree on, as with torchrun.

It never heals a rank when no other rank lives (there is no peer to copy): the attempt then fails and the job
resumes from its last checkpoint, as `recovery` = disk would. Every rank dies with its worker (`die_with_parent`).
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.offline import OFFLINE_ENV
from runtimes.jobs.worker import WorkerRun
from runtimes.training.jobs.peer_replica import NO_PEER_EXIT, replicas_dir
from runtimes.training.jobs.rank_launch import data_path, die_with_parent, result_path, stop_flag

REPLICA_MODULE = "runtimes.training.jobs.peer_replica"
_ROOT = Path(__file__).resolve().parents[3]
# The Lighthouse drops a rank whose heartbeat stops for this long, so the next quorum forms without it.
HEARTBEAT_TIMEOUT_MS = 1000
# A rank that heartbeats is waited for this long at a quorum (a checkpoint being written, a replacement's setup).
JOIN_TIMEOUT_MS = 60_000
MAX_REPLACEMENTS = 3  # per attempt: a rank that keeps dying is a failure, not something to heal again and again


def launch_replicas(run: WorkerRun, prepared: Any, processes: int, grace_s: int = 30) -> dict[str, Any]:
    """Run the job's ranks to their end, replacing lost ones; returns rank 0's report (`step`, `stopped`,
    `verdict`). Raises `RuntimeError` when a rank cannot be replaced."""
    os.environ.setdefault("RUST_LOG", "warn")  # the Lighthouse logs every quorum otherwise
    from torchft._torchft import LighthouseServer

    folder, store, job_id = run.folder, run.store, run.job.id
    with open(data_path(folder), "wb") as f:
        pickle.dump(prepared, f)
    for stale in (stop_flag(folder), result_path(folder)):
        stale.unlink(missing_ok=True)
    shutil.rmtree(replicas_dir(folder), ignore_errors=True)
    replicas_dir(folder).mkdir(parents=True)
    least = int(run.job.plan["settings"].get("min_ranks", 1))
    lighthouse = LighthouseServer(bind="[::]:0", min_replicas=least, join_timeout_ms=JOIN_TIMEOUT_MS, quorum_tick_ms=20,
                                  heartbeat_timeout_ms=HEARTBEAT_TIMEOUT_MS)
    env = {**os.environ, **OFFLINE_ENV,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env.setdefault("OMP_NUM_THREADS", str(max(1, cores // processes)))
    gpus = _gpu_count()

    def start(rank: int, replacement: bool) -> subprocess.Popen:
        cmd = [sys.executable, "-m", REPLICA_MODULE, job_id, "--workspace", str(run.ws.root), "--replica", str(rank),
               "--replicas", str(processes), "--lighthouse", lighthouse.address()] + ["--replacement"] * replacement
        own = {**env, "CUDA_VISIBLE_DEVICES": str(rank % gpus)} if gpus else env  # one GPU per rank
        return subprocess.Popen(cmd, cwd=_ROOT, env=own, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)

    ranks = {r: start(r, False) for r in range(processes)}
    store.add_event(job_id, "launch", f"{processes} ranks started as torchft replica groups (processes "
                    + ", ".join(str(p.pid) for p in ranks.values()) + f"), Lighthouse at {lighthouse.address()}",
                    {"pids": [p.pid for p in ranks.values()], "processes": processes, "recovery": "peer",
                     "lighthouse": lighthouse.address()})
    replaced: dict[int, float] = {}  # rank -> when its replacement started
    replacements, reported = 0, set()
    try:
        while any(p.poll() is None for p in ranks.values()):
            if run.stop.requested and not stop_flag(folder).exists():
                stop_flag(folder).touch()
            for rank, p in list(ranks.items()):
                if p.poll() is None or p.returncode == 0 or stop_flag(folder).exists():
                    continue
                living = [r for r, q in ranks.items() if q.poll() is None]
                if p.returncode == NO_PEER_EXIT and not living and all(
                        q.returncode == 0 for r, q in ranks.items() if r != rank):
                    continue  # the others finished the training before the replacement joined: nothing to heal
                why = _ended(p.returncode)
                if p.returncode == NO_PEER_EXIT or not living or replacements >= MAX_REPLACEMENTS:
                    raise RuntimeError(f"rank {rank} (process {p.pid}) {why}, and "
                                       + ("no peer was training to heal it from" if p.returncode == NO_PEER_EXIT
                                          or not living else f"{MAX_REPLACEMENTS} ranks were replaced already")
                                       + f"; see {folder / 'worker.log'}")
                ranks[rank] = start(rank, True)
                replacements += 1
                replaced[rank] = time.time()
                others = (f"rank {living[0]} trains" if len(living) == 1 else
                          "ranks " + ", ".join(map(str, living)) + " train")
                store.add_event(job_id, "rank_lost", f"rank {rank} (process {p.pid}) {why}; {others} on; replacement "
                                f"process {ranks[rank].pid} started, to receive model and optimizer state from a peer",
                                {"rank": rank, "pid": p.pid, "returncode": p.returncode,
                                 "replacement_pid": ranks[rank].pid, "living": living, "t": replaced[rank]})
            _report_healed(run, replaced, reported)
            time.sleep(0.2)
        _report_healed(run, replaced, reported)
    finally:
        for p in ranks.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        lighthouse.shutdown()
    report = json.loads(result_path(folder).read_text(encoding="utf-8")) if result_path(folder).is_file() else None
    if report is not None and (all(p.returncode in (0, NO_PEER_EXIT) for p in ranks.values()) or report["stopped"]):
        return report
    codes = {r: p.returncode for r, p in ranks.items()}
    raise RuntimeError(f"a rank of the job failed (exit codes {codes}); its traceback is in {folder / 'worker.log'}")


def _report_healed(run: WorkerRun, replaced: dict[int, float], reported: set[str]) -> None:
    """Each replacement's healing, as the replacement wrote it down, becomes one `recovery` event."""
    for healed in sorted(replicas_dir(run.folder).glob("healed-*.json")):
        if healed.name in reported:
            continue
        reported.add(healed.name)
        h = json.loads(healed.read_text(encoding="utf-8"))
        after = h["t"] - replaced.get(h["replica"], h["t"])
        run.store.add_event(run.job.id, "recovery", f"rank {h['replica']} (process {h['pid']}) healed from a peer at "
                            f"step {h['step']}: {h['bytes'] / 2**20:.2f} MiB of weights with their optimizer state in "
                            f"{h['seconds']:.2f} s, {after:.1f} s after its replacement started; no checkpoint was "
                            "read", {**h, "after_replacement_s": round(after, 2)})


def _ended(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0

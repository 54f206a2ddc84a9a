"""The worker's side of a job whose ranks run on a Ray cluster (Ray Train's `TorchTrainer`): several machines
(`nodes` > 1), or any job with several ranks where `[cluster] ray_address` is set. Each Ray worker runs the same
rank code as under torchrun (`rank_main.train_rank`); this worker is the Ray driver, so the job store still has one
process per job, and Ray ends the job's workers when it ends, however it ends.

The ranks read the workspace at the same path as this worker (a shared file system, which Ray Train needs anyway
for checkpoints across machines): the data file, the stop flag, the checkpoints and rank 0's report.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import signal
import threading
from pathlib import Path
from typing import Any

from core.errors import UserError

_ROOT = Path(__file__).resolve().parents[3]


def require_ray(why: str) -> None:
    """Refuse clearly where Ray Train is not installed."""
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.train") is None:
        raise UserError(f"{why}, and Ray is not installed: `pip install lathe-ml[ray]` (Ray Train) on every machine "
                        "of the cluster, or train on this machine with --processes N")


def runs_on_ray(ws: Any, settings: dict[str, Any]) -> bool:
    """Several machines always do; several ranks on one machine do when the workspace names a Ray cluster."""
    nodes, processes = int(settings.get("nodes", 1)), int(settings.get("processes", 1))
    return nodes > 1 or (processes > 1 and bool(ws.settings.cluster.ray_address))


def launch_on_ray(run: Any, prepared: Any, processes: int, nodes: int = 1) -> dict[str, Any]:
    """Run the job's `nodes` × `processes` ranks as Ray Train workers to their end; returns rank 0's report
    (`step`, `stopped`, `verdict`). Raises `RuntimeError` when a worker failed (Ray retries nothing: the job's own
    resume continues from its last checkpoint)."""
    from runtimes.training.jobs.rank_launch import data_path, result_path, stop_flag

    address = run.ws.settings.cluster.ray_address
    require_ray(f"job {run.job.id} runs on a Ray cluster" + (f" ({address})" if address else ""))
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    folder, world = run.folder, nodes * processes
    with open(data_path(folder), "wb") as f:
        pickle.dump(prepared, f)  # this job's own rows, read back by its own ranks only
    for stale in (stop_flag(folder), result_path(folder)):
        stale.unlink(missing_ok=True)
    _connect(ray, address)
    gpus = ray.cluster_resources().get("GPU", 0) > 0
    trainer = TorchTrainer(
        _rank, train_loop_config={"workspace": str(run.ws.root), "job_id": run.job.id},
        scaling_config=ScalingConfig(num_workers=world, use_gpu=gpus,
                                     resources_per_worker={"GPU": 1} if gpus else {"CPU": 1}),
        torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
        run_config=RunConfig(name=f"{run.job.id}-{run.job.attempt}", storage_path=str(folder / "ray"),
                             failure_config=FailureConfig(max_failures=0)))
    run.store.add_event(run.job.id, "launch", f"{world} ranks on the Ray cluster at {address or 'this machine'} "
                        f"({nodes} machine(s) × {processes}, {'GPU' if gpus else 'CPU'})",
                        {"launcher": "ray", "address": address, "processes": processes, "nodes": nodes})
    done = threading.Event()
    threading.Thread(target=_pass_stop, args=(run, stop_flag(folder), done), daemon=True).start()
    try:
        trainer.fit()
    except Exception as e:  # Ray's TrainingFailedError carries the worker's traceback
        report = _report(result_path(folder))
        if report is not None and report["stopped"]:
            return report
        raise RuntimeError(f"a rank of the job failed on the Ray cluster: {e}") from None
    finally:
        done.set()
        ray.shutdown()
    report = _report(result_path(folder))
    if report is None:
        raise RuntimeError(f"the ranks ended without rank 0's report; see {folder / 'worker.log'}")
    return report


def _connect(ray: Any, address: str | None) -> None:
    """Join the configured cluster, or else the one running on this machine (`ray start --head`)."""
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    from core.offline import OFFLINE_ENV

    # The job system handles preemption itself (a checkpoint on SIGTERM, then a requeue): no Ray watcher for it.
    runtime_env = {"env_vars": {**OFFLINE_ENV, **env, "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}}
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=address or "auto", runtime_env=runtime_env, logging_level="WARNING",
                 configure_logging=False)
    except ConnectionError as e:
        raise UserError(f"no Ray cluster to run on ({e}): start one with `ray start --head` and set "
                        "`[cluster] ray_address` in lathe.toml") from None
    finally:
        signal.signal(signal.SIGTERM, on_sigterm)  # ray.init exits on SIGTERM; this worker checkpoints first


def _pass_stop(run: Any, flag: Path, done: threading.Event) -> None:
    """This worker's stop request becomes the flag file every rank reads at its next step's end."""
    while not done.wait(0.2):
        if run.stop.requested:
            flag.touch()
            return


def _report(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _rank(config: dict[str, Any]) -> None:
    """One Ray Train worker: the rank code torchrun runs, in the process group Ray Train set up."""
    import ray.train

    from core.offline import apply_offline_env
    from core.workspace import Workspace
    from runtimes.jobs.store import JobStore
    from runtimes.training.jobs.rank_main import train_rank

    apply_offline_env()
    ws = Workspace.resolve(config["workspace"]).require()
    train_rank(ws, JobStore(ws), config["job_id"], ray.train.get_context().get_world_rank())

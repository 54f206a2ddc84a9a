"""Fine-tuning on a Ray cluster (Ray Train's TorchTrainer): `--nodes` and `[cluster] ray_address` choose it, Ray's
absence is refused clearly, and a job whose 2 CPU ranks (gloo) run as Ray workers on a local cluster is one job of
the job system: rank 0 reports its steps, and a cancel stops every rank at one step with a checkpoint and leaves no
rank behind."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.rank_processes import alive

from core.errors import UserError
from runtimes.training.distribution import topology_settings
from runtimes.training.hardware import Gpu, Hardware

GIB = 2**30


def gpus(n: int) -> Hardware:
    cards = tuple(Gpu(index=i, name="NVIDIA H100 80GB HBM3", total_bytes=80 * GIB, free_bytes=70 * GIB, bf16=True,
                      peak_flops=989e12) for i in range(n))
    return Hardware(cpu_cores=16, ram_total_bytes=128 * GIB, ram_available_bytes=100 * GIB, gpus=cards,
                    source="torch.cuda")


def _without_ray(monkeypatch):
    from runtimes.training.jobs import ray_launch

    real = importlib.util.find_spec
    monkeypatch.setattr(ray_launch.importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] == "ray" else real(name, *a))


def _name_cluster(ws, address: str) -> None:
    with open(ws.settings_path, "a", encoding="utf-8") as f:
        f.write(f'\n[cluster]\nray_address = "{address}"\n')


def test_several_machines_take_ranks_per_machine_and_are_refused_without_ray(monkeypatch):
    if importlib.util.find_spec("ray") is not None:
        assert topology_settings(2, 8, None, gpus(8)) == {"processes": 8, "nodes": 2}
        assert topology_settings(3, None, 2) == {"processes": 2, "nodes": 3}
        with pytest.raises(UserError, match="--nodes 2: say how many ranks each machine runs with --gpus-per-node"):
            topology_settings(2, None, None)
    assert topology_settings(1, None, 2) == {"processes": 2}
    _without_ray(monkeypatch)
    with pytest.raises(UserError, match=r"--nodes 2: training across several machines runs on a Ray cluster, and "
                                        r"Ray is not installed: `pip install lathe-ml\[ray\]`"):
        topology_settings(2, 8, None, gpus(8))


def test_a_workspace_naming_a_cluster_runs_ranks_on_ray_and_its_absence_fails_the_job_clearly(tmp_path, monkeypatch):
    from core.workspace import Workspace
    from runtimes.training.jobs.ray_launch import launch_on_ray, runs_on_ray

    ws = Workspace(tmp_path / "ws")
    ws.create()
    assert not runs_on_ray(ws, {"processes": 2}) and runs_on_ray(ws, {"processes": 1, "nodes": 2})
    _name_cluster(ws, "ray://head:10001")
    ws = Workspace(ws.root)
    assert ws.settings.cluster.ray_address == "ray://head:10001"
    assert runs_on_ray(ws, {"processes": 2}) and not runs_on_ray(ws, {"processes": 1})
    _without_ray(monkeypatch)

    class Run:  # what the launcher reads of a worker's run before it starts anything
        class job:
            id = "ft-1"

    Run.ws = ws
    with pytest.raises(UserError, match=r"job ft-1 runs on a Ray cluster \(ray://head:10001\), and Ray is not "
                                        r"installed: `pip install lathe-ml\[ray\]`"):
        launch_on_ray(Run, None, 2)


# --- a job on a local Ray cluster ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster on this machine with 2 CPUs, started once for the file; jobs join it by its address."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (`pip install lathe-ml[ray]`)")
    pytest.importorskip("ray.train.torch", reason="Ray Train is not installed (`pip install lathe-ml[ray]`)")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token written in the home directory
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.mark.slow
def test_a_ray_job_reports_from_rank_0_and_a_cancel_stops_every_rank_at_one_step_leaving_none(cluster,
                                                                                             demos_workspace):
    from runtimes.jobs import lifecycle
    from runtimes.jobs.store import JobStore
    from tests.waiting import JOB_STALL_S, until

    ws = demos_workspace(rows=40)
    _name_cluster(ws, cluster)
    store = JobStore(ws)
    spec = {"model": "tiny", "table": "demos", "technique": "sft", "eval_fraction": 0.1,
            "settings": {"micro_batch": 2, "max_length": 32, "learning_rate": 1e-3, "max_steps": 30,
                         "checkpoint_every": 5, "processes": 2}}
    job = lifecycle.submit(ws, "finetune", spec)

    def ranks() -> list[int]:
        return next((e.data["pids"] for e in store.events(job.id) if e.kind == "ranks"), [])

    pids = until(lambda: store.get(job.id).step >= 2 and ranks(), ws, poll_s=0.2)
    launch = next(e for e in store.events(job.id) if e.kind == "launch")
    assert launch.data["launcher"] == "ray" and launch.data["address"] == cluster
    assert "2 ranks on the Ray cluster" in launch.message and len(set(pids)) == 2
    worker = store.get(job.id).pid
    assert worker not in pids  # the ranks are Ray's workers, not the job's own process
    lifecycle.cancel(ws, job.id)
    stopped = lifecycle.wait(ws, job.id, timeout_s=JOB_STALL_S)
    assert stopped.status == "cancelled", stopped.error
    step = int(Path(stopped.checkpoint).name.split("-")[1])
    assert 2 <= step < 30 and f"stopped at step {step} with a checkpoint on every rank" in store.events(job.id)[-1].message
    assert {p.name for p in Path(stopped.checkpoint).glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    losses = store.metrics(job.id, "loss")
    assert sorted(s for _, s, _, _ in losses) == list(range(1, step + 1))  # one report per step: rank 0's alone
    until(lambda: not any(alive(p) for p in [worker, *pids]), ws, poll_s=0.2)


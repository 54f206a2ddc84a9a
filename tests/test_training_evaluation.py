"""Evaluation after training, on a real workspace with a tiny local model: an RLVR job on GSM8K compares the
verifiable reward of base and tuned replies on held-out rows, draws the curves and the comparison into a PNG in
its run folder and in MLflow, and puts the figures into the registered version's tags."""
from __future__ import annotations

import json

import pytest

from runtimes.training.jobs.store import JobStore


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from catalog.workspace import Workspace
    from catalog.workspace_setup import init_workspace
    from runtimes.training.datasets.shared_data import GSM8K_FILE, import_gsm8k, shared_data_dir
    from runtimes.training.tiny_models import install_demo_models

    if not (shared_data_dir() / GSM8K_FILE).exists():
        pytest.skip("GSM8K is not in the shared data folder")
    ws = Workspace(tmp_path_factory.mktemp("evaluation") / "ws")
    init_workspace(ws, demo=True, scale=0.1)
    install_demo_models(ws)
    import_gsm8k(ws)
    return ws


def test_rlvr_job_reports_base_versus_tuned_reward_with_a_plot_and_tags(ws):
    from runtimes.training.jobs import launcher
    from runtimes.training.registry import get_version
    from runtimes.training.tracking import client

    settings = {"max_steps": 1, "num_generations": 2, "max_completion_length": 16, "micro_batch": 2,
                "effective_batch": 4, "max_length": 128}
    job = launcher.submit(ws, {"model": "tiny-qwen3", "table": "gsm8k", "technique": "rlvr", "settings": settings})
    job = launcher.wait(ws, job.id, timeout_s=300)
    store = JobStore(ws)
    assert job.status == "succeeded", (job.error, [e.message for e in store.events(job.id)][-3:])
    assert job.config["gradient_accumulation"] == 2 and job.config["num_generations"] == 2

    report = json.loads((ws.root / "runs" / job.id / "report" / "report.json").read_text())
    cmp = report["comparison"]
    assert cmp["compared_rows"] == 8
    assert 0 <= cmp["base_reward"] <= 1 and 0 <= cmp["tuned_reward"] <= 1
    assert cmp["reward_gain"] == pytest.approx(cmp["tuned_reward"] - cmp["base_reward"])
    png = ws.root / "runs" / job.id / "report" / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(e.kind == "evaluation" and "base_reward" in e.message for e in store.events(job.id))

    name, version = job.model_version.split("/")
    metrics = get_version(ws, name, version).lineage["metrics"]
    assert metrics["base_reward"] == cmp["base_reward"] and metrics["tuned_reward"] == cmp["tuned_reward"]
    artifacts = [a.path for a in client(ws).list_artifacts(job.mlflow_run_id, "report")]
    assert "report/curves.png" in artifacts and "report/report.json" in artifacts

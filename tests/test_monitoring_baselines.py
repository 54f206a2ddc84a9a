"""Baselines from the training data of a registered model version (real MLflow registry, real warehouse), and
monitors that compare served traffic with them."""
from __future__ import annotations

import datetime as dt
import random

import pytest

from core.errors import UserError
from catalog.warehouse import connect_writer
from runtimes.monitoring.baselines import build_baseline, load_baseline
from runtimes.monitoring.monitors import create_monitor, run_monitor
from runtimes.monitoring.traffic import record
from runtimes.models.registry import register_version
from tests.test_monitoring_monitors import EN, NOW, WORDS, requests

pytestmark = pytest.mark.slow  # the MLflow registry makes each test take 5 to 10 s here


def training_table(ws, n: int = 150) -> str:
    """A prompt/reply table like the support data a model is fine-tuned on; returns its query."""
    rng = random.Random(21)
    rows = [(rng.choice(EN).format(n=rng.randint(1000, 99999)),
             " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 30))).capitalize() + ".") for _ in range(n)]
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE support_sft (ticket_id INTEGER, body VARCHAR, reply VARCHAR)")
        con.executemany("INSERT INTO support_sft VALUES (?, ?, ?)", [(i, b, r) for i, (b, r) in enumerate(rows)])
    return 'SELECT ticket_id, body, reply FROM "support_sft"'


def register(ws, tmp_path, sql: str, dataset: dict | None = None) -> None:
    lineage = {"job_id": "job-1", "base_model": "tiny-qwen3", "technique": "sft", "recipe": "sft",
               "dataset_hash": "cd" * 32, "dataset_sql": sql}
    if dataset is not None:
        lineage["dataset"] = dataset
    register_version(ws, "tiny-qwen3-sft", str(tmp_path), None, lineage)


def test_baseline_from_the_training_data(workspace, tmp_path):
    sql = training_table(workspace)
    register(workspace, tmp_path, sql)
    base = build_baseline(workspace, "tiny-qwen3-sft@1")
    assert base.rows == 150 and base.dataset_hash == "cd" * 32 and base.path.exists()
    assert base.mapping == "prompt_completion: prompt ← body, completion ← reply"
    again, frame = load_baseline(workspace, "tiny-qwen3-sft@1")
    assert again.model == "tiny-qwen3-sft@1" and len(frame) == 150
    assert frame["prompt"].iloc[0].startswith("user: ") and frame["language"].eq("en").mean() > 0.9
    assert frame["response_words"].between(10, 30).all()
    assert "latency_ms" not in frame.columns


def test_recorded_mapping_wins_and_changed_data_is_noted(workspace, tmp_path):
    sql = training_table(workspace, 40)
    register(workspace, tmp_path, sql, {"format": "prompt_completion", "mapping": {"prompt": "body", "completion": "reply"},
                                        "rows_read": 35})
    base = build_baseline(workspace, "tiny-qwen3-sft@1")
    assert base.rows == 40 and any("data changed since" in w for w in base.warnings)


def test_monitor_against_the_baseline(workspace, tmp_path):
    register(workspace, tmp_path, training_table(workspace))
    create_monitor(workspace, {"name": "vs-training", "endpoint": "tickets", "reference": "baseline",
                               "model": "tiny-qwen3-sft@1",
                               "rules": [{"kind": "feature_drift", "feature": "response_length"}]}, now=NOW)
    # Traffic like the training data. A K-S test at p < 0.05 flags one sample in twenty of an unchanged
    # distribution, so the seed is fixed (seed 31 happens to be such a sample: p = 0.017).
    record(workspace, requests(NOW - dt.timedelta(days=1), 100, seed=33))
    steady = run_monitor(workspace, "vs-training", now=NOW)
    assert steady.alerts == [] and steady.summary["reference"]["kind"] == "baseline", [a.message for a in steady.alerts]
    assert "latency_ms" not in steady.summary["features"]["tested"]
    assert steady.summary["reference"]["rows"] == 150

    record(workspace, requests(NOW, 100, shifted=True, seed=32, prefix="later-"))
    shifted = run_monitor(workspace, "vs-training", now=NOW + dt.timedelta(days=1))
    assert [a.feature for a in shifted.alerts] == ["response_length"]
    assert "training data of tiny-qwen3-sft@1, 150 rows" in shifted.alerts[0].message


def test_missing_versions_and_lineage_are_clear(workspace, tmp_path):
    register(workspace, tmp_path, training_table(workspace, 10))
    with pytest.raises(UserError, match="has no version 4; its versions: 1"):
        create_monitor(workspace, {"name": "x", "endpoint": "e", "reference": "baseline", "model": "tiny-qwen3-sft@4"})
    with pytest.raises(UserError, match="NAME@VERSION"):
        build_baseline(workspace, "tiny-qwen3-sft")
    register_version(workspace, "no-data", str(tmp_path), None, {"job_id": "job-9"})
    with pytest.raises(UserError, match="records no training data"):
        build_baseline(workspace, "no-data@1")
    with pytest.raises(UserError, match="no baseline for `tiny-qwen3-sft@1` yet"):
        load_baseline(workspace, "tiny-qwen3-sft@1", build=False)

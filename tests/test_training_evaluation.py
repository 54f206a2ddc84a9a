"""Evaluation after training, on a real workspace with a tiny local model: an RLVR job on GSM8K compares the
verifiable reward and pass rate of base and tuned replies on held-out rows, draws the curves and the comparison
into a PNG and a text report in its run folder and in MLflow, sets its estimated against its actual duration, and
registers a self-contained version (model artifact, dataset input). SFT (held-out loss, reference win rate) and
DPO (preference accuracy, implicit reward margin) are compared after real TRL training of a tiny model."""
from __future__ import annotations

import json
import math

import pytest

from runtimes.jobs.store import JobStore
from tests.waiting import wait_for_job

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(gsm8k_demo):
    return gsm8k_demo


def test_rlvr_job_reports_base_versus_tuned_reward_with_a_plot_and_tags(ws):
    from runtimes.jobs import lifecycle as launcher
    from runtimes.models.registry import get_version
    from runtimes.models.tracking import client, dataset_inputs

    # A random tiny model earns no reward on GSM8K: the job is let through its signal check, since what is
    # tested here is the evaluation, not learning.
    settings = {"max_steps": 1, "num_generations": 2, "max_completion_length": 16, "micro_batch": 2,
                "effective_batch": 4, "max_length": 128, "max_degenerate_share": 1}
    job = launcher.submit(ws, "finetune", {"model": "tiny-qwen3", "table": "gsm8k", "technique": "rlvr",
                                           "settings": settings})
    job = wait_for_job(ws, job.id)
    store = JobStore(ws)
    assert job.status == "succeeded", (job.error, [e.message for e in store.events(job.id)][-3:])
    assert job.config["gradient_accumulation"] == 2 and job.config["num_generations"] == 2

    report = json.loads((ws.root / "runs" / job.id / "report" / "report.json").read_text())
    cmp = report["comparison"]
    assert cmp["compared_rows"] == 8
    assert 0 <= cmp["base_reward"] <= 1 and 0 <= cmp["tuned_reward"] <= 1
    assert cmp["reward_gain"] == pytest.approx(cmp["tuned_reward"] - cmp["base_reward"])
    assert cmp["base_pass_rate"] in {i / 8 for i in range(9)} and 0 <= cmp["tuned_pass_rate"] <= 1
    assert "eval_perplexity" not in report["summary"]  # no perplexity from a GRPO loss
    png = ws.root / "runs" / job.id / "report" / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (ws.root / "runs" / job.id / "report" / "report.txt").read_text()
    assert f"held-out verifiable reward: base {cmp['base_reward']:.4g} → tuned {cmp['tuned_reward']:.4g}" in text
    assert "held-out pass rate (full score): base" in text
    assert any(e.kind == "evaluation" and "held-out pass rate" in e.message for e in store.events(job.id))

    # Estimated vs actual duration, from warm-up steps measured when the job planned itself.
    measured = job.lineage["plan"]["measured_duration"]
    assert measured["steps"] == 1 and measured["step_s"] > 0 and measured["evaluation_s"] > 0
    summary = report["summary"]
    assert summary["duration_estimated_s"] == job.lineage["plan"]["estimated_duration_s"] > 0
    assert summary["duration_ratio"] == pytest.approx(summary["duration_actual_s"] / summary["duration_estimated_s"],
                                                      rel=0.01)
    assert any(e.kind == "duration" and "the plan estimated" in e.message for e in store.events(job.id))
    run = client(ws).get_run(job.mlflow_run_id)
    assert run.data.metrics["duration_ratio"] == summary["duration_ratio"]

    name, version = job.model_version.split("/")
    metrics = get_version(ws, name, version).lineage["metrics"]
    assert metrics["base_reward"] == cmp["base_reward"] and metrics["tuned_reward"] == cmp["tuned_reward"]
    artifacts = [a.path for a in client(ws).list_artifacts(job.mlflow_run_id, "report")]
    assert "report/curves.png" in artifacts and "report/report.json" in artifacts

    # The registry entry is self-contained: the model is among the run's artifacts, the data an MLflow input.
    entry = get_version(ws, name, version)
    assert entry.lineage["model_uri"] == f"runs:/{job.mlflow_run_id}/model" and entry.aliases == ("challenger",)
    model_files = {a.path for a in client(ws).list_artifacts(job.mlflow_run_id, "model")}
    weights = "model/adapter_model.safetensors" if job.config["method"] != "full" else "model/model.safetensors"
    assert weights in model_files and "model/tokenizer.json" in model_files
    (data,) = dataset_inputs(ws, job.mlflow_run_id)
    assert data["context"] == "train" and data["source_type"] == "lathe_warehouse_sql"
    assert data["source"] == {"sql": job.lineage["dataset_sql"], "tables": ["gsm8k"]}
    assert data["profile"]["num_rows"] == job.lineage["dataset"]["train_rows"] and data["name"] == "gsm8k (train)"


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": f"Where is order {i}?"}],
             "completion": [{"role": "assistant", "content": f"Order {i} ships today from the warehouse."}],
             "chosen": [{"role": "assistant", "content": f"Order {i} ships today from the warehouse."}],
             "rejected": [{"role": "assistant", "content": "Maybe. I cannot say anything about that."}]}
            for i in range(start, start + n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from runtimes.models.sources import load_tokenizer, resolve_model
    from runtimes.training.tiny_models import build_tiny_model

    texts = [r["completion"][0]["content"] + " " + r["prompt"][0]["content"] + " " + r["rejected"][0]["content"]
             for r in _rows(40)]
    path = build_tiny_model("qwen3", tmp_path_factory.mktemp("models") / "tiny", texts, hidden=32, layers=1,
                            heads=2, kv_heads=1, vocab_size=320)
    source = resolve_model(str(path))
    return source, load_tokenizer(source)[0]


def _held_out(columns: tuple[str, ...]):
    from datasets import Dataset

    class Prepared:  # the two splits `evaluation` reads from a prepared dataset
        train = Dataset.from_list([{c: r[c] for c in columns} for r in _rows(24)])
        eval = Dataset.from_list([{c: r[c] for c in columns} for r in _rows(8, start=100)])
    return Prepared


def test_sft_comparison_gives_held_out_loss_and_a_reference_win_rate(tiny, tmp_path):
    from trl import SFTConfig, SFTTrainer

    from runtimes.training.evaluation import sft_comparison
    from runtimes.models.sources import load_model

    source, tok = tiny
    prepared = _held_out(("prompt", "completion"))
    args = SFTConfig(output_dir=str(tmp_path), max_steps=30, per_device_train_batch_size=8, learning_rate=5e-3,
                     use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True, logging_steps=10)
    trainer = SFTTrainer(model=load_model(source), args=args, train_dataset=prepared.train, processing_class=tok)
    trainer.train()
    out = sft_comparison(load_model(source), trainer.model, tok, prepared, max_new_tokens=16)
    assert out["scored_rows"] == 8 and out["compared_rows"] == 8
    assert out["tuned_heldout_loss"] < out["base_heldout_loss"] - 1.0  # it learned the replies' shape
    assert out["tuned_perplexity"] == pytest.approx(math.exp(out["tuned_heldout_loss"]))
    assert out["tuned_reference_f1"] > out["base_reference_f1"] and out["win_rate"] > 0.5
    # Base against itself: the same loss, and every row a tie.
    same = sft_comparison(trainer.model, trainer.model, tok, prepared, max_new_tokens=8, n=2)
    assert same["base_heldout_loss"] == same["tuned_heldout_loss"] and same["win_rate"] == 0.5


def test_preference_comparison_gives_accuracy_and_reward_margin_on_held_out_pairs(tiny, tmp_path):
    from trl import DPOConfig, DPOTrainer

    from runtimes.training.evaluation import describe_comparison, preference_comparison
    from runtimes.models.sources import load_model

    source, tok = tiny
    prepared = _held_out(("prompt", "chosen", "rejected"))
    args = DPOConfig(output_dir=str(tmp_path), max_steps=12, per_device_train_batch_size=8, learning_rate=2e-3,
                     beta=0.1, use_cpu=True, report_to=[], save_strategy="no", disable_tqdm=True, logging_steps=4)
    trainer = DPOTrainer(model=load_model(source), args=args, train_dataset=prepared.train, processing_class=tok)
    trainer.train()
    base = load_model(source)
    out = preference_comparison(base, trainer.model, tok, prepared, beta=0.1)
    assert out["compared_rows"] == 8
    # The short rejected reply starts far likelier than the long chosen one; a few steps narrow that gap.
    assert out["base_logp_margin"] < 0 and out["tuned_logp_margin"] > out["base_logp_margin"] + 5
    assert out["tuned_preference_accuracy"] >= out["base_preference_accuracy"]
    assert out["reward_margin"] > 0 and out["reward_accuracy"] == 1.0
    assert out["reward_margin"] == pytest.approx(0.1 * (out["tuned_logp_margin"] - out["base_logp_margin"]))
    lines = describe_comparison(out)
    assert any(line.startswith("preference accuracy (chosen more likely than rejected): base") for line in lines)
    same = preference_comparison(base, base, tok, prepared)
    assert same["reward_margin"] == 0 and same["base_preference_accuracy"] == same["tuned_preference_accuracy"]

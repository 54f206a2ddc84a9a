"""The fine-tuning plan on a real demo workspace with its tiny local models: the automatic configuration from the
data's real token lengths, overrides and their did-you-mean, the CLI's dry run (nothing started), and one short
SFT job that trains with the resolved settings, logs tokens/s and memory, draws its curves and records the
resolved configuration in the job and in the registered version's lineage."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from core.errors import UserError
from runtimes.jobs.store import JobStore
from runtimes.training.jobs.spec import JobSpec

pytestmark = pytest.mark.slow
SQL = ("SELECT t.body AS prompt, r.body AS reply FROM support_tickets t JOIN ticket_replies r "
       "ON r.ticket_id = t.ticket_id WHERE r.quality_score >= 4")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from core.workspace import Workspace
    from catalog.workspace_setup import init_workspace
    from runtimes.training.datasets.shared_data import GSM8K_FILE, import_gsm8k, shared_data_dir
    from runtimes.training.tiny_models import install_demo_models

    ws = Workspace(tmp_path_factory.mktemp("planning") / "ws")
    init_workspace(ws, demo=True, scale=0.1)
    install_demo_models(ws)
    if (shared_data_dir() / GSM8K_FILE).exists():
        import_gsm8k(ws)
    return ws


def _spec(**kw) -> JobSpec:
    return JobSpec.parse({"model": "tiny-qwen3", "sql": SQL, "technique": "sft", **kw})


def test_sft_plan_measures_the_data_and_explains_every_choice(ws):
    from runtimes.training.planning import plan_finetune

    plan = plan_finetune(ws, _spec())
    lengths = plan.profile.token_lengths
    assert plan.measured_rows == len(lengths) == plan.dataset["train_rows"] > 0
    p99 = plan.profile.quantile(0.99)
    s = plan.settings
    assert s["max_length"] % 64 == 0 and s["max_length"] >= p99 and s["max_length"] - 64 < max(p99, 64)
    assert s["method"] == "full" and s["precision"] == "fp32"  # a tiny model on a CPU
    assert "lora_rank" not in s and "effective_batch" not in s
    assert s["micro_batch"] * s["gradient_accumulation"] == plan.training.config.effective_batch
    assert s["learning_rate"] == 2e-5 and s["epochs"] in (1, 2, 3)
    assert {"packing", "padding_free"} <= set(s) and not (s["packing"] and s["padding_free"])
    assert plan.duration_s > 0 and plan.estimate.total > 0 and plan.hardware.device in ("cpu", "cuda")
    text = plan.explain()
    for words in ("Model: tiny-qwen3 (qwen3)", "prompt ← prompt, completion ← reply",
                  "Token lengths, measured with the model's tokenizer on every row", f"99th percentile {p99}",
                  "Hardware: ", "method = full", "micro_batch = ", "gradient_accumulation = ", "precision = fp32",
                  "gradient_checkpointing = ", f"max_length = {s['max_length']}", "packing = ", "padding_free = ",
                  "learning_rate = 2e-05", "epochs = ", "Duration: about"):
        assert words in text, words
    out = plan.to_json()
    json.dumps(out)  # all of it is plain JSON
    assert out["settings"] == s and out["token_lengths"]["p99"] == p99
    assert {d["field"] for d in out["decisions"]} >= {"method", "micro_batch", "max_length", "packing"}


def test_overrides_win_are_marked_and_a_bad_key_gets_did_you_mean(ws):
    from runtimes.training.planning import plan_finetune

    plan = plan_finetune(ws, _spec(settings={"micro_batch": 2, "learning_rate": 1e-3, "method": "lora",
                                             "effective_batch": 8, "max_steps": 3}))
    s = plan.settings
    assert (s["micro_batch"], s["gradient_accumulation"], s["learning_rate"], s["method"]) == (2, 4, 1e-3, "lora")
    assert s["lora_rank"] == 8 and s["lora_alpha"] == 16 and s["max_steps"] == 3
    marked = {d.field for d in plan.decisions if d.overridden}
    assert marked == {"micro_batch", "learning_rate", "method", "effective_batch"}
    text = plan.explain()
    assert "micro_batch = 2 [yours]" in text and "max_steps = 3 stops training before the planned epochs" in text
    with pytest.raises(UserError, match=r"no setting `learnin_rate`; did you mean `learning_rate`"):
        plan_finetune(ws, _spec(settings={"learnin_rate": 1e-3}))
    with pytest.raises(UserError, match="effective_batch.*positive integer"):
        plan_finetune(ws, _spec(settings={"effective_batch": 0}))


def test_rlvr_plan_on_gsm8k_sizes_prompts_and_answers(ws):
    from runtimes.training.datasets.shared_data import GSM8K_FILE, shared_data_dir
    from runtimes.training.planning import plan_finetune

    if not (shared_data_dir() / GSM8K_FILE).exists():
        pytest.skip("GSM8K is not in the shared data folder")
    plan = plan_finetune(ws, JobSpec.parse({"model": "tiny-qwen3", "table": "gsm8k", "technique": "rlvr"}),
                         measure_speed=False)  # sizes only: the warm-up generates hundreds of tokens a prompt
    s = plan.settings
    assert s["num_generations"] == (4 if plan.hardware.device == "cpu" else 8)
    assert s["max_completion_length"] % 64 == 0
    assert s["max_completion_length"] >= plan.profile.quantile(0.99, plan.profile.completion_lengths)
    assert "packing" not in s and s["learning_rate"] == 1e-6
    assert (s["micro_batch"] * s["gradient_accumulation"]) % s["num_generations"] == 0
    assert "the reference answers' 99th percentile" in plan.explain()


def test_cli_dry_run_prints_the_plan_and_starts_nothing(ws):
    from cli.main import app

    runner = CliRunner()
    args = ["--workspace", str(ws.root), "finetune", "--model", "tiny-qwen3", "--data", SQL, "--set", "micro_batch=4"]
    text = runner.invoke(app, [*args, "--dry-run"])
    assert text.exit_code == 0, text.output
    assert "micro_batch = 4 [yours]" in text.output and "dry run: nothing was started" in text.output
    out = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["settings"]["micro_batch"] == 4 and data["technique"] == "sft" and "Duration" in data["explanation"]
    bad = runner.invoke(app, [*args[:-1], "micro_btch=4", "--dry-run"])
    assert bad.exit_code != 0 and "did you mean `micro_batch`" in bad.output
    assert JobStore(ws).list() == []


def test_a_short_sft_job_trains_with_the_plan_logs_tokens_per_second_and_draws_its_curves(ws):
    from runtimes.jobs import lifecycle as launcher
    from runtimes.training.planning import plan_finetune
    from runtimes.models.registry import get_version

    spec = _spec(settings={"max_steps": 4, "micro_batch": 2, "max_length": 64}, name="tickets-sft")
    planned = plan_finetune(ws, spec).settings
    job = launcher.wait(ws, launcher.submit(ws, "finetune", spec).id, timeout_s=300)
    store = JobStore(ws)
    assert job.status == "succeeded", (job.error, [e.message for e in store.events(job.id)][-3:])
    assert job.config == planned  # the worker trained with the resolved plan, the user's values in it
    rows = store.metrics(job.id)
    by_name: dict[str, dict[int, float]] = {}
    for _, step, name, value in rows:
        by_name.setdefault(name, {})[step] = value
    assert set(by_name["tokens_per_s"]) >= {2, 3, 4} and all(v > 0 for v in by_name["tokens_per_s"].values())
    assert set(by_name["memory_mb"]) >= {1, 2, 3, 4} and all(v > 50 for v in by_name["memory_mb"].values())
    folder = ws.root / "runs" / job.id
    png = folder / "report" / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Token lengths, measured" in (folder / "plan.txt").read_text()
    name, version = job.model_version.split("/")
    registered = get_version(ws, name, version)
    plan = json.loads(registered.tags["lathe.plan"])
    assert registered.lineage["config"] == planned and plan["decisions"]["max_length"] == 64
    assert "max_length" in plan["overridden"] and registered.lineage["metrics"]["tokens_per_s"] > 0

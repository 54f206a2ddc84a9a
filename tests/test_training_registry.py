"""The model registry on a real MLflow SQLite store in a workspace: versions carry their lineage, approval goes
pending → approved or rejected once, by a named approver, and unknown names and versions get clear errors."""
from __future__ import annotations

import pytest

from core.errors import UserError
from core.principal import Principal
from runtimes.models.registry import decide, get_version, list_versions, model_name, register_version
from runtimes.models.tracking import JobRun


def _lineage(job_id: str) -> dict:
    return {"job_id": job_id, "base_model": "tiny-qwen3", "technique": "sft", "recipe": "sft",
            "dataset_hash": "ab" * 32, "dataset_sql": 'SELECT * FROM "demos"',
            "config": {"learning_rate": 0.0002, "max_steps": 4}, "metrics": {"loss": 3.5, "eval_loss": 3.7}}


@pytest.mark.slow
def test_versions_carry_lineage_and_approval_is_decided_once(workspace, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    run = JobRun(workspace, "job-1")
    run.log_params({"technique": "sft"})
    run.log_metrics(1, {"loss": 3.5})
    run.finish("FINISHED")
    v1 = register_version(workspace, "tiny-qwen3-sft", str(model), run.run_id, _lineage("job-1"))
    v2 = register_version(workspace, "tiny-qwen3-sft", str(model), None, _lineage("job-2"))
    assert (v1.version, v2.version) == ("1", "2") and v1.approval == v2.approval == "pending"
    shown = get_version(workspace, "tiny-qwen3-sft", 1)
    assert shown.run_id == run.run_id and shown.source == str(model)
    assert shown.lineage == _lineage("job-1")
    assert workspace.mlflow_db.is_file()

    # The newest version is the challenger; approval makes a version the champion.
    assert get_version(workspace, "tiny-qwen3-sft", 2).aliases == ("challenger",) and shown.aliases == ()
    approved = decide(workspace, "tiny-qwen3-sft", 1, "approved", "dana", "eval loss fine")
    assert approved.approval == "approved" and approved.to_json()["decided_by"] == "dana"
    assert approved.aliases == ("champion",) and approved.to_json()["aliases"] == ["champion"]
    assert decide(workspace, "tiny-qwen3-sft", "2", "rejected", "lee").approval == "rejected"
    assert get_version(workspace, "tiny-qwen3-sft", 2).aliases == ()  # a rejected version is no challenger
    v3 = register_version(workspace, "tiny-qwen3-sft", str(model), None, _lineage("job-3"))
    assert v3.aliases == ("challenger",)
    assert decide(workspace, "tiny-qwen3-sft", 3, "approved", "dana").aliases == ("champion",)
    assert get_version(workspace, "tiny-qwen3-sft", 1).aliases == ()  # the champion moved to the newer approval
    assert [(m.version, m.approval) for m in list_versions(workspace)] == [("1", "approved"), ("2", "rejected"),
                                                                          ("3", "approved")]
    with pytest.raises(UserError, match="version 1 was already approved by dana"):
        decide(workspace, "tiny-qwen3-sft", 1, "rejected", "lee")
    with pytest.raises(UserError, match="needs the approver's name"):
        decide(workspace, "tiny-qwen3-sft", 2, "approved", " ")


@pytest.mark.slow
def test_unknown_models_and_versions_are_clear(workspace, tmp_path):
    register_version(workspace, "tiny-llama-dpo", str(tmp_path), None, _lineage("job-3"))
    with pytest.raises(UserError, match="no registered model `tiny-lama-dpo`; did you mean `tiny-llama-dpo`"):
        get_version(workspace, "tiny-lama-dpo", 1)
    with pytest.raises(UserError, match="`tiny-llama-dpo` has no version 7; its versions: 1"):
        get_version(workspace, "tiny-llama-dpo", 7)
    assert model_name("Qwen/Qwen3-0.6B", "rlvr") == "Qwen3-0.6B-rlvr"
    assert model_name("/data/models/my base/", "sft") == "my-base-sft"


def _cli():
    import typer

    from cli import finetune_command
    from cli.main import app as lathe  # the real app, with `finetune`/`jobs`/`models` added as cli/main.py will

    app = typer.Typer()
    app.registered_callback = lathe.registered_callback
    for cmd in lathe.registered_commands:
        app.registered_commands.append(cmd)
    for group in lathe.registered_groups:
        app.registered_groups.append(group)
    if not any(c.name == "finetune" for c in app.registered_commands):
        finetune_command.register(app)
    return app


@pytest.mark.slow
def test_cli_dry_run_models_and_clear_errors(workspace, tmp_path):
    import json

    from typer.testing import CliRunner

    from catalog.importers import import_paths
    from runtimes.training.tiny_models import build_tiny_model

    rows = [{"prompt": f"Where is order {i}?", "completion": f"Order {i} ships today."} for i in range(12)]
    f = tmp_path / "demos.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_paths(workspace, [f])
    build_tiny_model("llama3", workspace.root / "models" / "base" / "tiny", [r["prompt"] for r in rows],
                     hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=300)
    run, w = CliRunner().invoke, ["--workspace", str(workspace.root)]

    out = run(_cli(), [*w, "finetune", "--model", "tiny", "--data", "demos", "--dry-run", "--json",
                       "--set", "max_steps=5", "--set", "learning_rate=1e-3"])
    assert out.exit_code == 0, out.output
    plan = json.loads(out.stdout)
    assert plan["settings"]["max_steps"] == 5 and plan["settings"]["learning_rate"] == 1e-3
    assert plan["data"].startswith("12 rows from demos") and plan["family"] == "llama3"
    out = run(_cli(), [*w, "finetune", "--model", "tiny", "--data", "SELECT prompt, completion FROM demos LIMIT 4",
                       "--dry-run"])
    assert out.exit_code == 0 and "dry run: nothing was started" in out.stdout
    out = run(_cli(), [*w, "finetune", "--model", "tiny", "--data", "demos", "--set", "epoch=2", "--dry-run"])
    assert out.exit_code == 2 and "no setting `epoch`; did you mean `epochs`" in out.output
    out = run(_cli(), [*w, "finetune", "--model", "nope/missing", "--data", "demos", "--dry-run"])
    assert out.exit_code == 2 and "HF_HUB_OFFLINE" in out.output
    assert run(_cli(), [*w, "jobs", "list", "--json"]).stdout.strip() == "[]"  # dry runs start nothing

    register_version(workspace, "tiny-sft", str(tmp_path), None, _lineage("job-9"))
    me = Principal.local_admin().name
    out = run(_cli(), [*w, "models", "approve", "tiny-sft", "1", "--by", "dana"])  # a name typed in is refused
    assert out.exit_code == 2 and f"--by is not taken: a decision is recorded as the user who makes it (`{me}`)" in out.output
    assert get_version(workspace, "tiny-sft", 1).approval == "pending"
    out = run(_cli(), [*w, "models", "approve", "tiny-sft", "1"])
    assert out.exit_code == 0 and f"tiny-sft version 1: approved by {me}" in out.stdout
    assert get_version(workspace, "tiny-sft", 1).tags["lathe.decided_by"] == me
    out = run(_cli(), [*w, "models", "reject", "tiny-sft", "1"])
    assert out.exit_code == 2 and f"already approved by {me}" in out.output
    listed = json.loads(run(_cli(), [*w, "models", "list", "--json"]).stdout)
    assert [(v["name"], v["version"], v["approval"]) for v in listed] == [("tiny-sft", "1", "approved")]
    shown = json.loads(run(_cli(), [*w, "models", "show", "tiny-sft", "1", "--json"]).stdout)
    assert shown["lineage"]["dataset_hash"] == "ab" * 32 and shown["lineage"]["config"]["max_steps"] == 4
    out = run(_cli(), [*w, "jobs", "show", "job-nope"])
    assert out.exit_code == 2 and "no job `job-nope`" in out.output

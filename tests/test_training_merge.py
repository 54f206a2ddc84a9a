"""Merging a registered LoRA adapter into its base on a real workspace and MLflow store: the merged model gives the
adapter's outputs without PEFT, is a new version pending approval with lineage to the adapter version, and the
CLI names what was wrong with a bad reference or a version that is no adapter."""
from __future__ import annotations

import json

import pytest

from core.errors import UserError
from runtimes.models.registry import get_version, register_version
from tests.serving_models import tiny_adapter, tiny_base


def test_merge_registers_a_full_model_with_the_adapters_outputs(workspace, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = tiny_base(workspace.root / "models" / "base" / "tiny")
    adapter = tiny_adapter(base, tmp_path / "adapter")
    lineage = {"job_id": "job-1", "base_model": "tiny", "technique": "sft", "config": {"method": "lora"}}
    register_version(workspace, "tiny-sft", str(adapter), None, lineage)

    from runtimes.training.merge import merge_adapter

    merged = merge_adapter(workspace, "tiny-sft", 1)
    assert (merged.name, merged.version, merged.approval) == ("tiny-sft", "2", "pending")
    assert merged.lineage["merged_from"] == "tiny-sft@1" and merged.lineage["base_model"] == "tiny"
    assert merged.aliases == ("challenger",) and merged.lineage["model_uri"].startswith("runs:/")
    folder = workspace.root / "models" / "merged" / "tiny-sft-v1"
    assert merged.source == str(folder) and not (folder / "adapter_config.json").exists()

    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        want = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base)), str(adapter))(ids).logits
        got = AutoModelForCausalLM.from_pretrained(str(folder))(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(str(base))(ids).logits
    assert torch.allclose(got, want, atol=1e-4) and not torch.allclose(got, plain, atol=1e-3)
    assert get_version(workspace, "tiny-sft", 1).approval == "pending"  # the adapter version is untouched

    with pytest.raises(UserError, match="version 1 of `tiny-sft` was merged before"):
        merge_adapter(workspace, "tiny-sft", 1)
    with pytest.raises(UserError, match="version 2 is a full model, not a LoRA adapter"):
        merge_adapter(workspace, "tiny-sft", 2)


def test_merge_command(workspace, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    base = tiny_base(workspace.root / "models" / "base" / "tiny")
    register_version(workspace, "tiny-dpo", str(tiny_adapter(base, tmp_path / "adapter")), None,
                     {"job_id": "job-2", "base_model": "tiny", "technique": "dpo"})
    run, w = CliRunner().invoke, ["--workspace", str(workspace.root)]
    out = run(app, [*w, "models", "merge", "tiny-dpo@1", "--json"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.stdout)
    assert shown["version"] == "2" and shown["lineage"]["merged_from"] == "tiny-dpo@1"
    out = run(app, [*w, "models", "merge", "tiny-dpo"])
    assert out.exit_code == 2 and "NAME@VERSION" in out.output
    out = run(app, [*w, "models", "merge", "tiny-dpx@1"])
    assert out.exit_code == 2 and "did you mean `tiny-dpo`" in out.output

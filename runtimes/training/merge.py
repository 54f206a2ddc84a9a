"""Merging a registered LoRA adapter into its base model (PEFT's `merge_and_unload`): the merged weights are saved
under `models/merged/` and registered as a new version of the same model, pending approval like any version,
with lineage to the adapter version it came from.

It never changes the adapter version or its files; a failure leaves no half-written folder behind.
"""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from core.errors import UserError
from core.workspace import Workspace
from runtimes.models.registry import ModelVersion, get_version, register_version


def parse_ref(ref: str) -> tuple[str, str]:
    """`NAME@N` → (NAME, N)."""
    name, sep, version = ref.strip().rpartition("@")
    if not sep or not name or not (version.isascii() and version.isdigit()):
        raise UserError(f"`{ref}`: name a registered version as NAME@VERSION, e.g. tiny-qwen3-sft@2")
    return name, version


def merge_adapter(ws: Workspace, name: str, version: str | int) -> ModelVersion:
    """Merge adapter version `name`@`version` into its base and register the result as a new version."""
    from peft import PeftModel

    from runtimes.models.sources import load_model, resolve_model

    adapter = get_version(ws, name, version)
    folder = Path(adapter.source)
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        what = "a full model" if (folder / "config.json").is_file() else f"missing (no files at {folder})"
        raise UserError(f"`{name}` version {adapter.version} is {what}, not a LoRA adapter: there is nothing to merge")
    base_ref = adapter.tags.get("lathe.base_location") or adapter.lineage.get("base_model") or \
        json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base_ref:
        raise UserError(f"`{name}` version {adapter.version} does not record its base model, so it cannot be merged")
    base = resolve_model(str(base_ref), ws)
    target = ws.root / "models" / "merged" / f"{name}-v{adapter.version}"
    if target.exists():
        raise UserError(f"{target} already exists: version {adapter.version} of `{name}` was merged before")
    staged = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        merged = PeftModel.from_pretrained(load_model(base), str(folder)).merge_and_unload()
        merged.save_pretrained(str(staged))
        _copy_tokenizer(folder, staged)
        staged.rename(target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    lineage = {**adapter.lineage, "merged_from": f"{name}@{adapter.version}",
               "config": {**adapter.lineage.get("config", {}), "method": "full (merged LoRA)"}}
    run_id, model_uri = _track(ws, name, adapter.version, target)
    return register_version(ws, name, str(target), run_id, {**lineage, "model_uri": model_uri})


def _copy_tokenizer(adapter: Path, target: Path) -> None:
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(target))


def _track(ws: Workspace, name: str, version: str, target: Path) -> tuple[str, str]:
    """An MLflow run for the merge that holds the merged model among its artifacts."""
    from runtimes.models.tracking import JobRun

    run = JobRun(ws, f"merge-{name}-v{version}")
    run.log_params({"merged_from": f"{name}@{version}"})
    uri = run.log_model(target)
    run.finish("FINISHED")
    return run.run_id, uri

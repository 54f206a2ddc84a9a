"""What a deploy names, resolved to files: `NAME` (the latest approved version), `NAME@3`, `NAME@latest`,
`NAME@approved`, or a base model of the workspace by name; a LoRA adapter is paired with the base it was trained on.

It only reads the registry and the model folders; it never loads weights. A version not yet approved is
refused here, and so is a folder path (a job's weights, a symlink out of `models/`), so nothing unreviewed is
ever served.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.workspace import Workspace

ALIASES = ("latest", "approved")
_BASE_FOLDERS = ("models/base", "models")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class ServedModel:
    id: str                 # the name requests use in their `model` field, e.g. `tiny-qwen3-sft@2`
    base: str               # the base model folder (or hub id) that is loaded
    base_ref: str           # what the base was called when it was trained, e.g. `tiny-qwen3`
    adapter: str | None     # a LoRA adapter folder on top of `base`, if the version is one
    version: Any = None     # runtimes.models.registry.ModelVersion, None for a base model
    training_sql: str | None = None  # the dataset the version learned from (monitoring's baseline)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "base": self.base, "base_ref": self.base_ref, "adapter": self.adapter,
                "version": self.version.version if self.version else None, "training_sql": self.training_sql}


def resolve_served(ws: Workspace, ref: str) -> ServedModel:
    """Resolve a deploy reference; raises `UserError` naming what exists when it does not."""
    from runtimes.models.registry import list_versions

    ref = ref.strip()
    if not ref:
        raise UserError("no model given: name a registered model (e.g. `tiny-qwen3-sft`, `tiny-qwen3-sft@2`) "
                        "or a workspace base model")
    name, _, selector = ref.partition("@")
    versions = list_versions(ws, name)
    if not versions:
        if selector:
            _unknown(ws, name)
        return _base_model(ws, name)
    if selector in ("", "approved"):
        approved = [v for v in versions if v.approval == "approved"]
        if not approved:
            listed = ", ".join(f"{v.version} ({v.approval})" for v in versions)
            raise UserError(f"`{name}` has no approved version to deploy (versions: {listed}); approve one with "
                            f"`lathe models approve {name} VERSION`, or deploy `{name}@N` explicitly")
        chosen = approved[-1]
    elif selector == "latest":
        chosen = versions[-1]
    elif selector.isascii() and selector.isdigit():
        from runtimes.models.registry import get_version

        chosen = get_version(ws, name, selector)
    else:
        raise UserError(f"`@{selector}` is not a version: use a number or one of {', '.join(ALIASES)}")
    if chosen.approval != "approved":
        raise UserError(f"`{name}` version {chosen.version} is {chosen.approval}, not approved: an approver "
                        f"decides first (`lathe models approve {name} {chosen.version}`)")
    return _from_version(ws, chosen)


def _from_version(ws: Workspace, v: Any) -> ServedModel:
    from runtimes.models.sources import resolve_model

    folder = Path(v.source)
    if not folder.is_dir():
        raise UserError(f"`{v.name}` version {v.version}'s files are missing at {folder}: the job folder was "
                        "removed; train it again")
    base_ref = str(v.lineage.get("base_model") or "")
    adapter_config = folder / "adapter_config.json"
    if adapter_config.exists():
        if not base_ref:
            base_ref = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path", "")
        base = resolve_model(base_ref, ws).location
        adapter: str | None = str(folder)
    else:
        base, adapter = str(folder), None
    return ServedModel(id=f"{v.name}@{v.version}", base=base, base_ref=base_ref or str(folder), adapter=adapter,
                       version=v, training_sql=v.lineage.get("dataset_sql"))


def _base_model(ws: Workspace, name: str) -> ServedModel:
    """A base model installed in the workspace (`models/base/NAME` or `models/NAME`), by name only."""
    from runtimes.models.sources import resolve_model

    if not _PLAIN_NAME.fullmatch(name):
        raise UserError(f"`{name}` is not a model name: deploy serves registered versions (NAME, NAME@N) and the "
                        "workspace's base models by name, never a folder; register and approve weights first")
    models = (ws.root / "models").resolve()
    for sub in _BASE_FOLDERS:
        folder = ws.root / sub / name
        if not folder.is_dir():
            continue
        real = folder.resolve()
        if not real.is_relative_to(models):  # a link out of models/ (to a job's weights) is not a base model
            raise UserError(f"{folder} leads outside the workspace's models folder (to {real}): base models are "
                            "installed there as folders; deploy trained weights as an approved registered version")
        return ServedModel(id=name, base=resolve_model(str(real), ws).location, base_ref=name, adapter=None)
    _unknown(ws, name)
    raise AssertionError("unreachable")  # _unknown always raises


def _unknown(ws: Workspace, name: str) -> None:
    from catalog.suggestions import unknown
    from runtimes.models.registry import list_versions

    registered = sorted({v.name for v in list_versions(ws)})
    bases = [p.name for folder in (ws.root / "models" / "base", ws.root / "models") if folder.is_dir()
             for p in sorted(folder.iterdir()) if (p / "config.json").exists()]
    raise UserError(unknown("model", name, registered + bases))

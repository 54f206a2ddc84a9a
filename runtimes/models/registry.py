"""The model registry: each successful job becomes a version in MLflow's registry with its lineage (base
model, dataset hash and SQL, recipe and resolved config, job id, metrics, the run's model artifact) and an
approval status kept as version tags (pending → approved or rejected, with who decided and when). Aliases follow
the decisions: a new version is the `challenger`, an approved one becomes the `champion`.

It never trains or deletes anything; a decision once taken is not silently overwritten.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from core.errors import UserError
from catalog.suggestions import unknown
from core.workspace import Workspace
from runtimes.models.tracking import client

APPROVAL = "lathe.approval"
CHAMPION, CHALLENGER = "champion", "challenger"
_TAG_MAX = 5000  # MLflow's limit on a tag value
Decision = Literal["approved", "rejected"]


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    source: str
    run_id: str | None
    approval: str
    lineage: dict[str, Any]
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "source": self.source, "run_id": self.run_id,
                "approval": self.approval, "lineage": self.lineage, "aliases": list(self.aliases),
                "decided_by": self.tags.get("lathe.decided_by"), "decision_note": self.tags.get("lathe.decision_note")}


def model_name(base: str, technique: str) -> str:
    """A registry name from a base model reference: `tiny-qwen3` + sft → `tiny-qwen3-sft`."""
    stem = base.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stem}-{technique}").strip("-") or f"model-{technique}"


def register_version(ws: Workspace, name: str, source: str, run_id: str | None, lineage: dict[str, Any]) -> ModelVersion:
    """Register the model saved at `source` as a new version of `name`, pending approval."""
    c = client(ws)
    from mlflow.exceptions import MlflowException

    try:
        c.create_registered_model(name, description="fine-tuned by Lathe")
    except MlflowException as e:
        if "RESOURCE_ALREADY_EXISTS" not in str(e.error_code):
            raise
    tags = {APPROVAL: "pending", **{f"lathe.{k}": _tag(v) for k, v in lineage.items()}}
    v = c.create_model_version(name, source=source, run_id=run_id, tags=tags,
                               description=f"job {lineage.get('job_id', '?')}")
    c.set_registered_model_alias(name, CHALLENGER, str(v.version))
    return _version(c.get_model_version(name, str(v.version)))


def list_versions(ws: Workspace, name: str | None = None) -> list[ModelVersion]:
    c = client(ws)
    found = c.search_model_versions(f"name = '{_quoted(name)}'" if name else None)
    return sorted((_version(v) for v in found), key=lambda m: (m.name, int(m.version)))


def get_version(ws: Workspace, name: str, version: str | int) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    c = client(ws)
    try:
        return _version(c.get_model_version(name, str(version)))
    except MlflowException:
        names = [m.name for m in c.search_registered_models()]
        if name not in names:
            raise UserError(unknown("registered model", name, names)) from None
        versions = [str(v.version) for v in c.search_model_versions(f"name = '{_quoted(name)}'")]
        raise UserError(f"`{name}` has no version {version}; its versions: {', '.join(sorted(versions, key=int))}") from None


def decide(ws: Workspace, name: str, version: str | int, decision: Decision, approver: str, note: str = "") -> ModelVersion:
    """Approve or reject a pending version, recording who decided, when and why."""
    if decision not in ("approved", "rejected"):
        raise UserError(f"a decision is `approved` or `rejected`, not `{decision}`")
    if not approver.strip():
        raise UserError("an approval needs the approver's name")
    current = get_version(ws, name, version)
    if current.approval != "pending":
        by = current.tags.get("lathe.decided_by", "someone")
        raise UserError(f"`{name}` version {current.version} was already {current.approval} by {by}; "
                        "register a new version to decide again")
    c = client(ws)
    for key, value in ((APPROVAL, decision), ("lathe.decided_by", approver.strip()),
                       ("lathe.decided_at", time.strftime("%Y-%m-%dT%H:%M:%S%z")), ("lathe.decision_note", note)):
        c.set_model_version_tag(name, str(current.version), key, value)
    _move_aliases(c, name, str(current.version), decision)
    return get_version(ws, name, version)


def _move_aliases(c: Any, name: str, version: str, decision: Decision) -> None:
    """An approved version becomes the champion; a decided one is no longer the challenger."""
    if decision == "approved":
        c.set_registered_model_alias(name, CHAMPION, version)
    aliases = c.get_registered_model(name).aliases or {}
    if str(aliases.get(CHALLENGER)) == version:
        c.delete_registered_model_alias(name, CHALLENGER)


def _tag(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:_TAG_MAX]


def _quoted(name: str) -> str:
    return name.replace("'", "''")


_LINEAGE_KEYS = ("job_id", "base_model", "technique", "recipe", "dataset_hash", "dataset_sql", "dataset", "config",
                 "metrics", "model_uri", "merged_from", "feature_views", "study", "fairness")
_JSON_KEYS = ("config", "metrics", "dataset", "feature_views", "study", "fairness")


def _version(v: Any) -> ModelVersion:
    tags = dict(v.tags or {})
    lineage: dict[str, Any] = {}
    for key in _LINEAGE_KEYS:
        raw = tags.get(f"lathe.{key}")
        if raw is None:
            continue
        try:
            lineage[key] = json.loads(raw) if key in _JSON_KEYS else raw
        except json.JSONDecodeError:
            lineage[key] = raw
    return ModelVersion(name=v.name, version=str(v.version), source=v.source, run_id=v.run_id,
                        approval=tags.get(APPROVAL, "pending"), lineage=lineage, tags=tags,
                        aliases=tuple(getattr(v, "aliases", None) or ()))

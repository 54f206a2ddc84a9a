"""Names the agent's planners resolve words against: the workspace's endpoints and its registered models with
the words of their lineage (base model, technique, the tables they learned from).

Read-only lookups over `runtimes/serving/` and the registry; a planner uses them to name things, never to act.
"""
from __future__ import annotations

import re

from core.workspace import Workspace


def endpoint_names(ws: Workspace) -> list[str]:
    from runtimes.serving.endpoints.deploy import list_endpoints

    return [e.name for e in list_endpoints(ws)]


def registered_models(ws: Workspace) -> dict[str, str]:
    """Registered model name → words describing it (its lineage's tables, base model and technique)."""
    from runtimes.models.registry import list_versions

    about: dict[str, set[str]] = {}
    for v in list_versions(ws):
        words = about.setdefault(v.name, set())
        lineage = v.lineage
        dataset = lineage.get("dataset")
        tables = dataset.get("table") if isinstance(dataset, dict) else None
        text = " ".join(str(x) for x in (lineage.get("dataset_sql"), tables, lineage.get("base_model"),
                                         lineage.get("technique")) if x)
        words |= {w for w in re.split(r"[^a-z0-9_]+", text.lower()) if w and w not in _SQL_WORDS}
    return {name: " ".join(sorted(w)) for name, w in about.items()}


_SQL_WORDS = frozenset({"select", "from", "where", "and", "or", "not", "as", "limit", "order", "by", "group", "join",
                        "on", "is", "null", "in", "main"})

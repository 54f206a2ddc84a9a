"""What a new chat offers to ask, drawn from the workspace itself: a metric question, a catalog question, a write
that waits for approval and a fine-tune, each only where the workspace has what it needs.

Reads the catalog and the models folder; it never runs a question.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from catalog.metadata import Catalog
    from core.workspace import Workspace

PREFERRED_DIMENSIONS = ("region", "segment", "category", "channel", "status", "country")


class Starter(NamedTuple):
    label: str
    message: str


def starters(ws: Workspace, catalog: Catalog) -> list[Starter]:
    """Up to four questions this workspace can answer, in the order a newcomer would try them."""
    out: list[Starter] = []
    metric, dimension = _metric_and_dimension(catalog)
    if metric:
        out.append(Starter(f"{metric.capitalize()} by {dimension}" if dimension else f"{metric.capitalize()} by month",
                           f"{metric} by {dimension or 'month'} last quarter"))
    tables = sorted(catalog.tables.values(), key=lambda t: -(t.row_count or 0))
    if tables:
        out.append(Starter(f"Who owns {tables[0].name}?", f"who owns {tables[0].name}?"))
    if metric and dimension:
        name = f"{metric}_by_{dimension}".replace(" ", "_")
        out.append(Starter(f"Save {metric} by {dimension} as a table",
                           f"create a table of {metric} by {dimension} named {name}"))
    tune = _finetune(ws, catalog)
    if tune:
        out.append(tune)
    return out


def _metric_and_dimension(catalog: Catalog) -> tuple[str | None, str | None]:
    """The first metric the semantic layer defines, and a categorical dimension people ask about."""
    manifest = catalog.semantic
    if not manifest.metrics:
        return None, None
    metric = manifest.metrics[0].name
    names = {d.name for m in manifest.semantic_models for d in m.dimensions if str(d.type.value) == "categorical"}
    dimension = next((d for d in PREFERRED_DIMENSIONS if d in names), None)
    return metric.replace("_", " "), dimension


def _finetune(ws: Workspace, catalog: Catalog) -> Starter | None:
    """A fine-tune of a base model in the workspace on a table shaped for it (preference pairs, or prompts with
    completions)."""
    base = ws.root / "models" / "base"
    models = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if not models:
        return None
    for technique, needed in (("dpo", {"prompt", "chosen", "rejected"}), ("sft", {"prompt", "completion"})):
        table = next((t.name for t in catalog.tables.values() if needed <= {c.name for c in t.columns}), None)
        if table is not None:
            return Starter(f"Fine-tune {models[0]} on {table}", f"fine-tune {models[0]} with {technique} on {table}")
    return None

"""`lathe tour`: a short look at what the workspace's catalog holds, with example commands built
from its own tables and metrics. Reads the catalog only; never runs a query."""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import typer

from cli.context import command, workspace

if TYPE_CHECKING:
    from catalog.metadata import Catalog
    from catalog.semantic.spec import Metric, SemanticManifest, SemanticModel

_DESCRIPTION_CHARS = 70
# Metrics a newcomer asks about first, when the workspace defines them.
_FAVOURITES = ("revenue", "ticket_volume", "csat", "orders", "average_order_value")


def _model_of(manifest: "SemanticManifest", metric: "Metric") -> "SemanticModel | None":
    tp = metric.type_params
    if tp.measure is not None:
        return next((m for m in manifest.semantic_models if any(ms.name == tp.measure.name for ms in m.measures)), None)
    for inp in [x for x in (tp.numerator, tp.denominator) if x] + list(tp.metrics or []):
        sub = manifest.metric(inp.name)
        if sub is not None and sub.name != metric.name:
            found = _model_of(manifest, sub)
            if found is not None:
                return found
    return None


def _categorical_dimensions(manifest: "SemanticManifest", model: "SemanticModel") -> tuple[list[str], list[str]]:
    """(dimensions of the model itself, dimensions one join away through its foreign entities)."""
    from catalog.semantic.spec import DimensionType, EntityType
    from catalog.table_description import primary_entity

    own_prefix = primary_entity(model)
    own = [f"{own_prefix}__{d.name}" for d in model.dimensions if d.type == DimensionType.categorical and own_prefix]
    joined = []
    for e in model.entities:
        if e.type != EntityType.foreign:
            continue
        other = next((m for m in manifest.semantic_models if m is not model and primary_entity(m) == e.name), None)
        if other is not None:
            joined += [f"{e.name}__{d.name}" for d in other.dimensions if d.type == DimensionType.categorical]
    return own, joined


def _ordered_metrics(manifest: "SemanticManifest") -> list["Metric"]:
    fav = [m for name in _FAVOURITES if (m := manifest.metric(name))]
    return fav + [m for m in manifest.metrics if m not in fav]


def example_commands(catalog: "Catalog", limit: int = 5) -> list[str]:
    """Commands worth trying in this workspace, drawn from its own metrics, dimensions and tables."""
    from catalog.semantic.spec import MetricType

    from sqlglot import exp

    out: list[str] = []
    manifest = catalog.semantic
    terms = {g.name.lower() for g in catalog.glossary.values()}
    described_entity: str | None = None
    metrics = _ordered_metrics(manifest)
    used_models: set[str] = set()
    for metric in metrics:
        model = _model_of(manifest, metric)
        if model is None or model.name in used_models or metric.type not in (MetricType.simple, MetricType.ratio):
            continue
        own, joined = _categorical_dimensions(manifest, model)
        if not used_models and joined:
            # A dimension the glossary defines is one people ask about (region, segment).
            dim = sorted(joined, key=lambda d: d.split("__")[-1].lower() not in terms)[0]
            described_entity = dim.split("__")[0]
            out.append(f"lathe query --metrics {metric.name} --group-by {dim},metric_time__quarter")
        elif own:
            partner = next((m for m in metrics if m is not metric and m.type == MetricType.simple
                            and _model_of(manifest, m) is model), None)
            names = metric.name + (f",{partner.name}" if partner else "")
            out.append(f"lathe query --metrics {names} --group-by {own[0]}")
        else:
            out.append(f"lathe query --metrics {metric.name} --group-by metric_time__month")
        used_models.add(model.name)
        if len(used_models) == 2:
            break
    ratio = next((m for m in metrics if m.type in (MetricType.ratio, MetricType.derived)
                  and not any(m.name in c.split() for c in out)), None)
    if ratio is not None:
        out.append(f"lathe query --metrics {ratio.name} --group-by metric_time__month")

    tables = sorted(catalog.tables.values(), key=lambda t: -(t.row_count or 0))
    categorical = next(((t, c) for t in tables for c in t.columns
                        if c.stats and c.stats.top_values and c.pii is None and c.type.upper().startswith("VARCHAR")), None)
    if categorical is not None:
        t, c = categorical
        col = exp.column(c.name)
        sql = (exp.select(col, exp.Count(this=exp.Star()).as_("n")).from_(exp.Table(this=exp.to_identifier(t.name)))
               .group_by(col)
               .order_by(exp.column("n").desc()).sql("duckdb"))
        out.append(f"lathe sql {shlex.quote(sql)}")
    from catalog.table_description import primary_entity

    behind = next((m.table for m in manifest.semantic_models if described_entity and primary_entity(m) == described_entity), None)
    if tables:
        out.append(f"lathe catalog describe {catalog.table(behind).name if behind and catalog.table(behind) else tables[0].name}")
    term = next((g for g in catalog.glossary.values() if g.synonyms), None)
    if term is not None:
        out.append(f"lathe catalog search {shlex.quote(term.synonyms[-1])}")
    return out[:limit]


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DESCRIPTION_CHARS else text[: _DESCRIPTION_CHARS - 1] + "…"


def register(app: typer.Typer) -> None:
    @app.command("tour")
    @command
    def tour() -> None:
        """A short tour of the workspace: tables, metrics, glossary terms and commands to try."""
        from catalog.store import CatalogStore

        ws = workspace()
        catalog = CatalogStore(ws).load()
        typer.echo(f"Workspace {ws.root}")
        if not catalog.tables:
            typer.echo("The catalog is empty: import data with `lathe catalog import FILE`, "
                       "or start over with the demo company: `lathe init --demo --force`.")
            return
        typer.echo(f"\nTables ({len(catalog.tables)}):")
        width = max(len(n) for n in catalog.tables)
        for t in sorted(catalog.tables.values(), key=lambda t: t.name):
            rows = f"{t.row_count:,}" if t.row_count is not None else "?"
            typer.echo(f"  {t.name:<{width}}  {rows:>11} rows  {_clip(t.description)}")
        metrics = catalog.semantic.metrics
        if metrics:
            typer.echo(f"\nMetrics ({len(metrics)}): " + ", ".join(m.name for m in metrics))
        if catalog.glossary:
            terms = [g.name + (f" ({', '.join(g.synonyms[:2])})" if g.synonyms else "") for g in catalog.glossary.values()]
            typer.echo(f"\nGlossary ({len(terms)}): " + "; ".join(terms))
        examples = example_commands(catalog)
        if examples:
            typer.echo("\nTry:")
            for line in examples:
                typer.echo(f"  {line}")

"""Everything the workspace knows about one table: its catalog entry, owner, the semantic models,
dimensions and metrics built on it, related glossary terms and the lineage of its derived columns.

Reads the catalog (and the warehouse only for a table the catalog does not list); it never writes.
"""
from __future__ import annotations

from typing import Any

import jinja2
from pydantic import BaseModel, Field

from core.errors import UserError
from catalog.metadata import Catalog, Column, ColumnLineage, Owner, Table
from catalog.semantic.spec import EntityType, Metric, MetricType, SemanticManifest, SemanticModel
from catalog.suggestions import unknown
from core.workspace import Workspace


class TableDescription(BaseModel):
    table: Table
    catalogued: bool = True
    owner: Owner | None = None
    semantic_models: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    dimensions: list[str] = Field(default_factory=list, description="qualified names, e.g. customer__region")
    measures: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    glossary: list[str] = Field(default_factory=list)
    lineage: list[ColumnLineage] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def primary_entity(model: SemanticModel) -> str | None:
    if model.primary_entity:
        return model.primary_entity
    return next((e.name for e in model.entities if e.type in (EntityType.primary, EntityType.unique)), None)


def filter_dimensions(filters: list[str] | None) -> list[str]:
    """Dimension and entity names a MetricFlow filter refers to (`{{ Dimension('customer__region') }}`),
    found by rendering its Jinja with recording stand-ins rather than by reading the text."""
    names: list[str] = []

    def record(name: str, *args: Any, **kwargs: Any) -> str:
        names.append(name)
        return "NULL"

    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    for text in filters or []:
        try:
            env.from_string(text).render(Dimension=record, TimeDimension=record, Entity=record, Metric=record)
        except jinja2.TemplateError:
            continue  # a malformed filter is the semantic layer's to report, not this summary's
    return names


class _SemanticIndex:
    """Which tables each measure, entity and metric rests on."""

    def __init__(self, manifest: SemanticManifest):
        self.manifest = manifest
        self.measure_table = {ms.name: m.table for m in manifest.semantic_models for ms in m.measures}
        self.entity_table = {pe: m.table for m in manifest.semantic_models if (pe := primary_entity(m))}
        self._memo: dict[str, set[str]] = {}

    def metric_tables(self, metric: Metric, seen: frozenset[str] = frozenset()) -> set[str]:
        if metric.name in self._memo:
            return self._memo[metric.name]
        if metric.name in seen:
            return set()  # a cycle is the semantic layer's error to report
        tp = metric.type_params
        tables: set[str] = set()
        if metric.type in (MetricType.simple, MetricType.cumulative) and tp.measure:
            tables.add(self.measure_table.get(tp.measure.name, ""))
            tables |= self._filter_tables(tp.measure.filter)
        inputs = [x for x in (tp.numerator, tp.denominator) if x] + list(tp.metrics or [])
        for inp in inputs:
            sub = self.manifest.metric(inp.name)
            if sub is not None:
                tables |= self.metric_tables(sub, seen | {metric.name})
            tables |= self._filter_tables(inp.filter)
        tables |= self._filter_tables(metric.filter)
        tables.discard("")
        self._memo[metric.name] = tables
        return tables

    def _filter_tables(self, filters: list[str] | None) -> set[str]:
        out = set()
        for name in filter_dimensions(filters):
            entity = name.split("__")[0]
            if entity in self.entity_table:
                out.add(self.entity_table[entity])
        return out


def describe_catalog_table(catalog: Catalog, table: Table, catalogued: bool = True) -> TableDescription:
    """The description of a table that is already loaded; pure."""
    low = table.name.lower()
    desc = TableDescription(table=table, catalogued=catalogued)
    desc.owner = catalog.owners.get(table.owner) if table.owner else None
    manifest = catalog.semantic
    for m in manifest.semantic_models:
        if m.table.lower() != low:
            continue
        desc.semantic_models.append(m.name)
        desc.entities += [e.name for e in m.entities]
        prefix = primary_entity(m)
        desc.dimensions += [f"{prefix}__{d.name}" if prefix else d.name for d in m.dimensions]
        desc.measures += [ms.name for ms in m.measures]
    index = _SemanticIndex(manifest)
    desc.metrics = sorted(mt.name for mt in manifest.metrics
                          if low in {t.lower() for t in index.metric_tables(mt)})
    metric_refs = {f"metric:{name}" for name in desc.metrics}
    for term in catalog.glossary.values():
        if any(r.lower() == low or r.lower().startswith(low + ".") or r in metric_refs for r in term.related):
            desc.glossary.append(term.name)
    desc.lineage = [x for x in catalog.lineage if x.table.lower() == low]
    return desc


def describe_table(ws: Workspace, name: str) -> TableDescription:
    """Describe a catalogued table, or a warehouse table the catalog does not list yet."""
    from catalog.store import CatalogStore

    catalog = CatalogStore(ws).load()
    table = catalog.table(name)
    if table is not None:
        return describe_catalog_table(catalog, table)

    from catalog.profiling import warehouse_columns, warehouse_tables
    from catalog.warehouse import connect_reader

    with connect_reader(ws) as con:
        tables = warehouse_tables(con)
        actual = next((t for t in tables if t.lower() == name.lower()), None)
        if actual is None:
            raise UserError(unknown("table", name, sorted(set(tables) | set(catalog.tables))))
        columns = [Column(name=c, type=t) for c, t in warehouse_columns(con, actual)]
    return describe_catalog_table(catalog, Table(name=actual, columns=columns), catalogued=False)

"""The `context` node: the tables, columns, glossary terms and metrics relevant to a request.

Retrieved by catalog search (plus what the thread's previous turn used), capped in size: the prompt
never carries the whole catalog.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import UserError
from catalog.metadata import Catalog, Column
from catalog.semantic.spec import Metric, MetricType, SemanticManifest
from agent.catalog_cache import CatalogCache
from agent.state import AgentState, CatalogContext, ColumnBrief, GlossaryBrief, MetricBrief, TableBrief

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from agent.resources import AgentResources

MAX_TABLES = 6
MAX_METRICS = 8
MAX_GLOSSARY = 5
MAX_DIMENSIONS = 24
MAX_SAMPLES = 4
SEARCH_DEPTH = 25


def context_node(state: AgentState, runtime: Runtime[AgentResources]) -> dict[str, Any]:
    cache: CatalogCache = runtime.context.catalog
    return {"context": gather_context(cache, state.request, state.context)}


def gather_context(cache: CatalogCache, text: str, previous: CatalogContext | None = None) -> CatalogContext:
    cat = cache.catalog
    tables: list[str] = []
    metrics: list[str] = []
    glossary: list[str] = []
    try:
        hits = cache.search.search(text, k=SEARCH_DEPTH) if text.strip() else []
    except UserError:
        hits = []
    for h in hits:
        if h.kind == "table":
            tables.append(h.name)
        elif h.kind == "column" and h.table:
            tables.append(h.table)
        elif h.kind == "metric":
            metrics.append(h.name)
        elif h.kind == "glossary":
            glossary.append(h.name)
            term = cat.glossary.get(h.name)
            for ref in term.related if term else []:
                if ref.startswith("metric:"):
                    metrics.append(ref.split(":", 1)[1])
                else:
                    tables.append(ref.split(".", 1)[0])
        elif h.kind == "dimension":
            metrics += _metrics_of_model(cat.semantic, h.table)
    # A follow-up ("now by month") names little: what the previous turn used still applies.
    if previous is not None:
        tables += [t.name for t in previous.tables]
        metrics += [m.name for m in previous.metrics]
        glossary += [g.name for g in previous.glossary]
    return CatalogContext(
        tables=[_table_brief(cat, n) for n in _first(tables, MAX_TABLES, lambda n: cat.table(n) is not None)],
        metrics=[_metric_brief(cat.semantic, n) for n in _first(metrics, MAX_METRICS,
                                                                 lambda n: _metric(cat.semantic, n) is not None)],
        glossary=[_glossary_brief(cat, n) for n in _first(glossary, MAX_GLOSSARY, lambda n: n in cat.glossary)])


def _first(names: list[str], n: int, exists: Any) -> list[str]:
    return [x for x in dict.fromkeys(names) if exists(x)][:n]


def _table_brief(cat: Catalog, name: str) -> TableBrief:
    t = cat.table(name)
    assert t is not None
    return TableBrief(name=t.name, description=t.description, row_count=t.row_count, columns=[
        ColumnBrief(name=c.name, type=c.type, description=c.description, pii=c.pii.value if c.pii else None,
                    synonyms=c.synonyms, samples=_samples(c)) for c in t.columns])


def _samples(column: Column) -> list[str]:
    # Values help a planner write filters ("in EMEA") on text columns; never for PII, and ids or numbers say nothing.
    if column.pii is not None or not any(k in column.type.upper() for k in ("CHAR", "TEXT", "STRING", "ENUM")):
        return []
    return [str(v) for v in column.sample_values[:MAX_SAMPLES]]


def _glossary_brief(cat: Catalog, name: str) -> GlossaryBrief:
    g = cat.glossary[name]
    return GlossaryBrief(name=g.name, definition=g.definition, synonyms=g.synonyms, related=g.related)


def _metric(sem: SemanticManifest, name: str) -> Metric | None:
    return next((m for m in sem.metrics if m.name == name), None)


def _metrics_of_model(sem: SemanticManifest, model_name: str | None) -> list[str]:
    model = next((m for m in sem.semantic_models if m.name == model_name), None)
    if model is None:
        return []
    measures = {x.name for x in model.measures}
    return [m.name for m in sem.metrics if m.type_params.measure and m.type_params.measure.name in measures]


def _measures(sem: SemanticManifest, metric: Metric, seen: set[str]) -> list[str]:
    """The measures a metric is computed from, through ratio and derived inputs."""
    if metric.name in seen:
        return []
    seen.add(metric.name)
    tp = metric.type_params
    if tp.measure is not None:
        return [tp.measure.name]
    out: list[str] = []
    for inp in [tp.numerator, tp.denominator, *(tp.metrics or [])]:
        sub = _metric(sem, inp.name) if inp is not None else None
        if sub is not None:
            out += _measures(sem, sub, seen)
    return out


def _metric_brief(sem: SemanticManifest, name: str) -> MetricBrief:
    m = _metric(sem, name)
    assert m is not None
    return MetricBrief(name=m.name, type=m.type.value if isinstance(m.type, MetricType) else str(m.type),
                       description=m.description or m.label or "", dimensions=_dimensions(sem, m))


def _dimensions(sem: SemanticManifest, metric: Metric) -> list[str]:
    """Categorical group-by names that reach a metric's models, by the semantic layer's own join graph,
    each by its shortest path (`customer__region` rather than `order__customer__region`)."""
    from catalog.semantic.join_graph import JoinGraph

    measures = set(_measures(sem, metric, set()))
    graph = JoinGraph(sem)
    shortest: dict[tuple[str, str], tuple[str, ...]] = {}
    for sm in sem.semantic_models:
        if not measures & {x.name for x in sm.measures}:
            continue
        for reach in graph.reaches(sm.name):
            for name, kind, _ in graph.elements(reach):
                key = (reach.model, name)
                if kind == "dimension" and (key not in shortest or len(reach.links) < len(shortest[key])):
                    shortest[key] = (*reach.links, name)
    names = sorted(("__".join(v) for v in shortest.values()), key=lambda n: (n.count("__"), n))
    return ["metric_time__day", "metric_time__month", "metric_time__quarter", "metric_time__year", *names][:MAX_DIMENSIONS]

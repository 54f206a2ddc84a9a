"""Aggregates over any catalogued column, read from a question: "average discount", "max csat", "90th
percentile of resolution hours", "number of distinct countries", "share of orders returned", "quantity per
order". Finds the column (by name, synonym or a close spelling), the aggregate, and builds the measure and
metric that compute it inside the column's semantic model (a proposed one when the table has none).

It reads words and the catalog only; compiling and running are the semantic layer's and the SQL tools'.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from catalog.metadata import Catalog
from catalog.semantic.spec import SemanticManifest, SemanticModel
from agent.planners.question_words import Token, stems

AGGREGATES = {"average": "average", "avg": "average", "mean": "average", "median": "median", "min": "min",
              "minimum": "min", "lowest": "min", "smallest": "min", "shortest": "min", "max": "max",
              "maximum": "max", "highest": "max", "largest": "max", "biggest": "max", "longest": "max",
              "sum": "sum", "total": "sum", "distinct": "count_distinct", "unique": "count_distinct",
              "different": "count_distinct", "count": "count"}
SHARE_WORDS = frozenset({"share", "percentage", "percent", "proportion", "fraction", "pct", "rate"})
_PERCENTILE = re.compile(r"^(?:p(\d{1,2})|(\d{1,2})(?:th|st|nd|rd))$")
_SKIPPABLE = frozenset({"the", "a", "an", "of", "our", "all"})
WINDOW = 3  # how far after the aggregate word the column may start ("median line amount")
FUZZY = 0.8


@dataclass
class ColumnAsk:
    """What a question asks to aggregate: `agg` over `table.column`, or the share of `table`'s rows."""
    agg: str  # an AggregationType value, or "share"
    table: str
    column: str | None
    used: set[int] = field(default_factory=set)
    percentile: float | None = None
    per_entity: str | None = None  # "per order": divided by the count of distinct orders
    words: str = ""

    def describe(self) -> str:
        what = f"`{self.table}.{self.column}`" if self.column else f"rows of `{self.table}`"
        if self.agg == "share":
            return f"the share of {what} that match the filters below"
        name = {"count_distinct": "distinct count", "average": "average", "percentile":
                f"{round((self.percentile or 0) * 100)}th percentile"}.get(self.agg, self.agg)
        text = f"{name} of {what}"
        return text + (f" per `{self.per_entity}`" if self.per_entity else "")


# Superlatives rank when they come before a metric ("the highest revenue"); "max" and "minimum" aggregate.
RANKING = frozenset({"lowest", "smallest", "shortest", "highest", "largest", "biggest", "longest"})
_NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|REAL|"
                      r"DOUBLE|DECIMAL|NUMERIC)", re.IGNORECASE)
_ORDERED = re.compile(r"^(DATE|TIMESTAMP|TIME)", re.IGNORECASE)


def fits(agg: str, column_type: str) -> bool:
    """Whether the aggregate means something on a column of this type (no average of text)."""
    if agg in ("count", "count_distinct", "share"):
        return True
    if agg in ("min", "max"):
        return bool(_NUMERIC.match(column_type) or _ORDERED.match(column_type))
    return bool(_NUMERIC.match(column_type))


class ColumnIndex:
    """The catalog's column names and synonyms by stems, and their words for close spellings."""

    def __init__(self, catalog: Catalog):
        self.types = {(t.name, c.name): c.type for t in catalog.tables.values() for c in t.columns}
        self.phrases: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for t in catalog.tables.values():
            for c in t.columns:
                if c.pii is not None:
                    continue  # no aggregates over personal data
                for p in [c.name.replace("_", " "), *c.synonyms]:
                    key = stems(p)
                    if key and (t.name, c.name) not in self.phrases.get(key, []):
                        self.phrases.setdefault(key, []).append((t.name, c.name))
        self.words = {w for key in self.phrases for w in key}
        self.longest = max((len(k) for k in self.phrases), default=0)

    def at(self, tokens: Sequence[Token], i: int) -> tuple[list[tuple[str, str]], int] | None:
        """The columns a phrase starting at token `i` names, and where it ends (longest phrase first)."""
        for n in range(min(self.longest, len(tokens) - i), 0, -1):
            key = tuple(self._stem(tokens[k]) for k in range(i, i + n))
            if key in self.phrases:
                return self.phrases[key], i + n
        return None

    def _stem(self, t: Token) -> str:
        if t.stem in self.words or len(t.low) < 5 or t.is_number:
            return t.stem
        close = difflib.get_close_matches(t.stem, list(self.words), n=1, cutoff=FUZZY)
        return close[0] if close else t.stem


def read_column_ask(tokens: Sequence[Token], catalog: Catalog, index: ColumnIndex,
                    named_tables: dict[int, str]) -> ColumnAsk | str | None:
    """The aggregate a question asks for, a question back when the column is in several tables, or None."""
    lows = [t.low for t in tokens]
    for i, w in enumerate(lows):
        if w in SHARE_WORDS and (w != "rate" or i == 0):
            table = next((named_tables[k] for k in sorted(named_tables) if k > i), None)
            if table is not None:
                used = {i} | {k for k in named_tables if named_tables[k] == table and k > i}
                return ColumnAsk("share", table, None, used, words=w)
    agg_at: int | None = None
    percentile: float | None = None
    for i, w in enumerate(lows):
        m = _PERCENTILE.match(w)
        if m and (m.group(1) or (i + 1 < len(lows) and lows[i + 1] == "percentile")):
            agg_at, percentile = i, int(m.group(1) or m.group(2)) / 100
            break
        if w in AGGREGATES:
            agg_at = i  # the last aggregate word before the column counts ("number of distinct countries")
            j = _next(lows, i + 1)
            if j < len(lows) and lows[j] in AGGREGATES:
                continue
            break
    starts = range(_next(lows, agg_at + 1 + (percentile is not None and lows[agg_at + 1:agg_at + 2] == ["percentile"])),
                   len(tokens)) if agg_at is not None else range(len(tokens))
    for j in list(starts)[:WINDOW] if agg_at is not None else starts:
        found = index.at(tokens, j)
        if found is None:
            continue
        columns, end = found
        agg = "percentile" if percentile is not None else AGGREGATES[lows[agg_at]] if agg_at is not None else "sum"
        columns = [c for c in columns if fits(agg, index.types.get(c, ""))]
        if not columns:
            continue
        per = _per_entity(tokens, end, catalog, columns)
        if agg_at is None and per is None:
            continue  # a column named without an aggregate is a metric question's business
        tables = {t for t, _ in columns}
        named = {t for t in named_tables.values()} & tables
        if len(tables) > 1 and len(named) != 1:
            options = ", ".join(f"`{t}.{c}`" for t, c in columns)
            return f"`{' '.join(x.text for x in tokens[j:end])}` is a column of several tables ({options}): which one? " \
                   f"Ask again with the table's name, e.g. \"... in {columns[0][0]}\"."
        table = named.pop() if named else columns[0][0]
        column = next(c for t, c in columns if t == table)
        used = set(range(j, end)) | ({agg_at} if agg_at is not None else set())
        used |= {k for k in range(agg_at or j, j) if lows[k] in _SKIPPABLE or lows[k] in AGGREGATES or lows[k] == "percentile"}
        used |= {k for k, t in named_tables.items() if t == table}
        if per is not None:
            used |= per[1]
        if agg == "average" and per is not None:
            agg = "sum"  # "average quantity per order": the total over the number of orders
        return ColumnAsk(agg, table, column, used, percentile, per[0] if per else None,
                         " ".join(tokens[k].text for k in sorted(used)))
    return None


def _next(lows: Sequence[str], i: int) -> int:
    while i < len(lows) and lows[i] in _SKIPPABLE:
        i += 1
    return i


def _per_entity(tokens: Sequence[Token], end: int, catalog: Catalog, columns: list[tuple[str, str]]
                ) -> tuple[str, set[int]] | None:
    """"per order" after the column: an entity of the column's model, and the tokens that name it."""
    if end + 1 >= len(tokens) or tokens[end].low != "per":
        return None
    word = tokens[end + 1].stem
    tables = {t.lower() for t, _ in columns}
    entities = [e for m in catalog.semantic.semantic_models if m.table.lower() in tables for e in m.entities]
    named = next((e for e in entities if stems(e.name.replace("_", " ")) == (word,)), None)
    if named is not None:
        return named.name, {end, end + 1}
    return None


def model_for(catalog: Catalog, table: str) -> SemanticModel | None:
    """The table's semantic model, or one proposed from its catalogued columns when it has none."""
    model = next((m for m in catalog.semantic.semantic_models if m.table.lower() == table.lower()), None)
    if model is not None:
        return model
    from catalog.table_semantics import propose

    t = catalog.table(table)
    if t is None:
        return None
    # Without profiled counts, a text column is offered as a dimension: this model lives for one question only.
    distinct = {c.name: c.stats.distinct_count if c.stats and c.stats.distinct_count is not None else 1
                for c in t.columns}
    data = propose(t.name, [(c.name, c.type) for c in t.columns], distinct, t.row_count or 0, t.primary_key)
    return SemanticManifest.model_validate(data).semantic_models[0]


def with_column_metric(catalog: Catalog, ask: ColumnAsk, model: SemanticModel) -> tuple[SemanticManifest, str]:
    """The workspace's manifest plus the measure and metric that compute `ask`, and that metric's name."""
    from catalog.semantic.spec import AggParams, Measure, MeasureInput, Metric, MetricInput, MetricType, MetricTypeParams

    manifest = catalog.semantic
    taken = {m.name for m in manifest.metrics} | {ms.name for sm in manifest.semantic_models for ms in sm.measures}

    def free(name: str) -> str:
        out, n = name, 2
        while out in taken:
            out, n = f"{name}_{n}", n + 1
        taken.add(out)
        return out

    measures: list[Measure] = []
    metrics: list[Metric] = []

    def simple(name: str, agg: str, expr: str, params: AggParams | None = None) -> str:
        ms = Measure(name=free(f"{name}_measure"), agg=agg, expr=expr, agg_params=params)
        measures.append(ms)
        metric = Metric(name=free(name), type=MetricType.simple, type_params=MetricTypeParams(measure=MeasureInput(name=ms.name)))
        metrics.append(metric)
        return metric.name

    if ask.agg == "share":
        rows = simple(f"{ask.table}_rows", "sum", "1")
        name = free(f"share_of_{ask.table}")
        metrics.append(Metric(name=name, type=MetricType.ratio, type_params=MetricTypeParams(
            numerator=MetricInput(name=rows), denominator=MetricInput(name=rows))))
    elif ask.per_entity is not None:
        entity = next(e for e in model.entities if e.name == ask.per_entity)
        total = simple(f"{ask.column}_total", ask.agg, ask.column or "1")
        count = simple(f"{ask.per_entity}_count", "count_distinct", entity.expr or entity.name)
        name = free(f"{ask.column}_per_{ask.per_entity}")
        metrics.append(Metric(name=name, type=MetricType.ratio, type_params=MetricTypeParams(
            numerator=MetricInput(name=total), denominator=MetricInput(name=count))))
    else:
        params = AggParams(percentile=ask.percentile) if ask.agg == "percentile" else None
        prefix = f"p{round((ask.percentile or 0) * 100)}" if ask.agg == "percentile" else ask.agg
        name = simple(f"{prefix}_{ask.column}", ask.agg, ask.column or "1", params)
    new_model = model.model_copy(update={"measures": [*model.measures, *measures]})
    models = [new_model if m.name == model.name else m for m in manifest.semantic_models]
    if all(m.name != model.name for m in manifest.semantic_models):
        models.append(new_model)
    return SemanticManifest(semantic_models=models, metrics=[*manifest.metrics, *metrics]), name

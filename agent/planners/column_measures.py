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
WINDOW = 4  # how far after the aggregate word the column may start ("largest single order line amount")
FUZZY = 0.8
GAP = 2  # other words allowed between a column's own words


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
    metric: str | None = None  # a metric divided per entity ("orders per customer")

    def describe(self) -> str:
        what = (f"metric `{self.metric}`" if self.metric else f"`{self.table}.{self.column}`" if self.column
                else f"rows of `{self.table}`")
        if self.agg == "share":
            if self.column:
                return f"the share of rows of `{self.table}` where `{self.column}` is above zero"
            return f"the share of {what} that match the filters below"
        if self.per_entity:
            total = what if self.metric or not self.column else f"the sum of {what}"
            if not self.metric and not self.column:
                total = f"the count of {what}"
            return f"{total} per `{self.per_entity}` (divided by the number of distinct `{self.per_entity}`)"
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
        contiguous: tuple[list[tuple[str, str]], int] | None = None
        for n in range(min(self.longest, len(tokens) - i), 0, -1):
            key = tuple(self._stem(tokens[k]) for k in range(i, i + n))
            if key in self.phrases:
                contiguous = self.phrases[key], i + n
                break
        # A column's words with a few others between them ("dwell time in minutes" for `dwell_minutes`), when
        # that names more of a column than the words side by side do.
        first = self._stem(tokens[i]) if i < len(tokens) else ""
        for key, columns in self.phrases.items():
            if len(key) < 2 or key[0] != first or (contiguous is not None and len(key) <= contiguous[1] - i):
                continue
            at, k = i, 1
            for j in range(i + 1, min(len(tokens), i + 1 + GAP + len(key))):
                if k < len(key) and self._stem(tokens[j]) == key[k]:
                    at, k = j, k + 1
            if k == len(key) and at - i < len(key) + GAP:
                return columns, at + 1
        return contiguous

    def _stem(self, t: Token) -> str:
        if t.stem in self.words or len(t.low) < 5 or t.is_number:
            return t.stem
        close = difflib.get_close_matches(t.stem, list(self.words), n=1, cutoff=FUZZY)
        return close[0] if close else t.stem


def read_column_ask(tokens: Sequence[Token], catalog: Catalog, index: ColumnIndex,
                    named_tables: dict[int, str]) -> ColumnAsk | str | None:
    """The aggregate a question asks for, a question back when the column is in several tables, or None."""
    lows = [t.low for t in tokens]
    per = read_per_entity(tokens, catalog, index, named_tables)
    if per is not None:
        return per
    for i, w in enumerate(lows):
        if w in SHARE_WORDS and (w != "rate" or i == 0):
            table = next((named_tables[k] for k in sorted(named_tables) if k > i), None)
            if table is not None:
                used = {i} | {k for k in named_tables if named_tables[k] == table and k > i}
                # "had any discount": rows where a numeric column of the table is above zero
                for j in range(max(used) + 1, len(tokens)):
                    found = index.at(tokens, j)
                    hit = [c for t, c in found[0] if t == table and fits("sum", index.types.get((t, c), ""))] if found else []
                    if hit:
                        return ColumnAsk("share", table, hit[0], used | set(range(j, found[1])), words=w)
                return ColumnAsk("share", table, None, used, words=w)
    for i, w in enumerate(lows):  # "count customers in LATAM", "number of tickets": rows of the table named
        j = _next(lows, i + 1 + (w == "number" and lows[i + 1:i + 2] == ["of"]))
        if (w == "count" or (w == "number" and lows[i + 1:i + 2] == ["of"])) and j in named_tables:
            table = named_tables[j]
            return ColumnAsk("count", table, None, {k for k in range(i, j)} | {k for k, t in named_tables.items()
                                                                               if t == table and k >= j}, words=w)
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
    # The column follows the aggregate word; else it came before it ("the typical discount ... the average").
    candidates = [*list(starts)[:WINDOW], *range(agg_at - 1, -1, -1)] if agg_at is not None else []
    for j in candidates:
        found = index.at(tokens, j)
        if found is None:
            continue
        columns, end = found
        agg = "percentile" if percentile is not None else AGGREGATES[lows[agg_at]] if agg_at is not None else "sum"
        columns = [c for c in columns if fits(agg, index.types.get(c, ""))]
        if not columns:
            continue
        if agg_at is None:
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
        if agg_at is not None and agg_at < j:  # words between qualify the column ("median line amount")
            used |= set(range(agg_at + 1, j))
        used |= {k for k in range(agg_at or j, j) if lows[k] in _SKIPPABLE or lows[k] in AGGREGATES or lows[k] == "percentile"}
        used |= {k for k, t in named_tables.items() if t == table}
        return ColumnAsk(agg, table, column, used, percentile, None, " ".join(tokens[k].text for k in sorted(used)))
    return None


def _next(lows: Sequence[str], i: int) -> int:
    while i < len(lows) and lows[i] in _SKIPPABLE:
        i += 1
    return i


PER_WORDS = frozenset({"per", "each", "every"})
_NUMERATOR_SKIP = frozenset({"the", "a", "an", "of", "our", "all", "average", "avg", "mean", "number", "many", "how",
                             "on", "does", "do", "did", "is", "are", "was", "were", "we", "typical", "typically"})


def read_per_entity(tokens: Sequence[Token], catalog: Catalog, index: ColumnIndex,
                    named_tables: dict[int, str]) -> ColumnAsk | None:
    """"orders per customer", "average quantity per order line", "tickets each support agent handles": a total
    (a metric, a column's sum or a table's rows) over the number of distinct entities in the same model."""
    from agent.planners.intents import find_tables

    lows = [t.low for t in tokens]
    for p, w in enumerate(lows):
        if w not in PER_WORDS:
            continue
        entity = _entity_at(tokens, _next(lows, p + 1), catalog, named_tables)
        if entity is None:
            continue
        name, entity_used = entity
        for end in range(p, 0, -1):  # the nearest total before the per word, past grammar words
            found = _total_ending_at(tokens, end, catalog, index, named_tables, name)
            if found is not None:
                found.used |= {p} | entity_used | {k for k in range(found.used and min(found.used) or 0, p)
                                                    if lows[k] in _NUMERATOR_SKIP}
                found.used |= {k for k in range(0, min(found.used)) if lows[k] in ("average", "avg", "mean")}
                found.words = " ".join(tokens[k].text for k in sorted(found.used))
                return found
            if lows[end - 1] not in _NUMERATOR_SKIP:
                break
    return None


def _entity_at(tokens: Sequence[Token], i: int, catalog: Catalog, named_tables: dict[int, str]
               ) -> tuple[str, set[int]] | None:
    """The entity named at token `i`: a table (what one row of it is) or an entity's own name."""
    if i in named_tables:
        table = named_tables[i]
        model = next((m for m in catalog.semantic.semantic_models if m.table.lower() == table.lower()), None)
        entity = next((e.name for e in model.entities if e.type.value == "primary"), None) if model else None
        if entity is not None:
            return entity, {k for k, t in named_tables.items() if t == table and k >= i}
    if i < len(tokens):
        for m in catalog.semantic.semantic_models:
            for e in m.entities:
                if stems(e.name.replace("_", " ")) == (tokens[i].stem,):
                    return e.name, {i}
    return None


def _has_entity(catalog: Catalog, table: str, entity: str) -> bool:
    return any(m.table.lower() == table.lower() and any(e.name == entity for e in m.entities)
               for m in catalog.semantic.semantic_models)


def _total_ending_at(tokens: Sequence[Token], end: int, catalog: Catalog, index: ColumnIndex,
                     named_tables: dict[int, str], entity: str) -> ColumnAsk | None:
    """A total whose words end just before token `end`: a simple metric, a numeric column, or a table's rows,
    in a model that has `entity`."""
    sem = catalog.semantic
    for start in range(max(0, end - 4), end):
        span = tuple(t.stem for t in tokens[start:end])
        for m in sem.metrics:
            if m.type.value != "simple" or m.type_params.measure is None or m.filter:
                continue
            if span not in {stems(m.name.replace("_", " ")), stems(m.label or "")}:
                continue
            model = next((sm for sm in sem.semantic_models for ms in sm.measures if ms.name == m.type_params.measure.name), None)
            if model is not None and _has_entity(catalog, model.table, entity):
                return ColumnAsk("sum", model.table, None, set(range(start, end)), per_entity=entity, metric=m.name)
        found = index.at(tokens, start)
        if found is not None and found[1] == end:
            for table, column in found[0]:
                if fits("sum", index.types.get((table, column), "")) and _has_entity(catalog, table, entity):
                    return ColumnAsk("sum", table, column, set(range(start, end)), per_entity=entity)
        if all(k in named_tables for k in range(start, end)) and len({named_tables[k] for k in range(start, end)}) == 1:
            table = named_tables[start]
            if _has_entity(catalog, table, entity):
                return ColumnAsk("count", table, None, set(range(start, end)), per_entity=entity)
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
        having = simple(f"{ask.table}_with_{ask.column}", "sum", f"CASE WHEN {ask.column} > 0 THEN 1 ELSE 0 END") \
            if ask.column else rows
        name = free(f"share_of_{ask.table}")
        metrics.append(Metric(name=name, type=MetricType.ratio, type_params=MetricTypeParams(
            numerator=MetricInput(name=having), denominator=MetricInput(name=rows))))
    elif ask.per_entity is not None:
        entity = next(e for e in model.entities if e.name == ask.per_entity)
        total = ask.metric or simple(f"{ask.column or ask.table}_total", ask.agg, ask.column or "1")
        count = simple(f"{ask.per_entity}_count", "count_distinct", entity.expr or entity.name)
        name = free(f"{ask.metric or ask.column or ask.table}_per_{ask.per_entity}")
        metrics.append(Metric(name=name, type=MetricType.ratio, type_params=MetricTypeParams(
            numerator=MetricInput(name=total), denominator=MetricInput(name=count))))
    else:
        params = AggParams(percentile=ask.percentile) if ask.agg == "percentile" else None
        prefix = f"p{round((ask.percentile or 0) * 100)}" if ask.agg == "percentile" else ask.agg
        name = simple(f"{prefix}_{ask.column or ask.table}", ask.agg, ask.column or "1", params)
    new_model = model.model_copy(update={"measures": [*model.measures, *measures]})
    models = [new_model if m.name == model.name else m for m in manifest.semantic_models]
    if all(m.name != model.name for m in manifest.semantic_models):
        models.append(new_model)
    return SemanticManifest(semantic_models=models, metrics=[*manifest.metrics, *metrics]), name

"""The workspace's own words for its metrics, dimensions, entities and dimension values, and the matching of
a question's words against them: names, labels, column synonyms and glossary terms, by stem, and typos by
close spelling.

Everything comes from the catalog and semantic layer of the workspace (no built-in vocabulary); it only
matches words, it never decides what a question asks.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from catalog.metadata import Catalog
from catalog.semantic.spec import DimensionType, EntityType, SemanticModel
from agent.planners.question_words import FILLER, Token, lows, stems, without_parentheses

Kind = Literal["metric", "dimension", "entity", "value"]

MAX_PHRASE = 6
FUZZY_CUTOFF = 0.8
FUZZY_MIN_LENGTH = 5
_JOINABLE = (EntityType.primary, EntityType.unique, EntityType.natural)


@dataclass(frozen=True)
class Meaning:
    """What a phrase can stand for. `model` and `dimension` are set for dimensions and values."""
    kind: Kind
    name: str  # metric name, dimension name, entity name, or the value itself
    model: str | None = None
    dimension: str | None = None
    via: str = ""  # how the phrase names it: "", "label", "glossary term `revenue`", "synonym of column x.y"

    @property
    def key(self) -> tuple:
        return (self.kind, self.name, self.model, self.dimension)


@dataclass
class Match:
    """A run of tokens and the meanings it can have (the best-matching ones only)."""
    start: int
    end: int  # exclusive
    meanings: list[Meaning]
    exact: bool  # written as the vocabulary writes it, not only the same stems

    @property
    def indexes(self) -> range:
        return range(self.start, self.end)

    def of(self, *kinds: str) -> list[Meaning]:
        return [m for m in self.meanings if m.kind in kinds]


@dataclass
class _Entry:
    meaning: Meaning
    surface: tuple[str, ...]


@dataclass
class Vocabulary:
    """Phrases by their stems, each with the meanings it can have and how it is written."""
    phrases: dict[tuple[str, ...], list[_Entry]] = field(default_factory=dict)
    words: dict[str, str] = field(default_factory=dict)  # surface word -> its stem, for typo correction
    metric_words: dict[str, set[str]] = field(default_factory=dict)  # stem -> metrics whose names or labels hold it
    glossary_metric_words: dict[str, set[str]] = field(default_factory=dict)  # the same, from glossary terms

    def add(self, text: str, meaning: Meaning) -> None:
        key, surface = stems(text), lows(text)
        if not key or len(key) > MAX_PHRASE or all(w in FILLER for w in surface):
            return
        entries = self.phrases.setdefault(key, [])
        if not any(e.meaning.key == meaning.key and e.surface == surface for e in entries):
            entries.append(_Entry(meaning, surface))
        for w, s in zip(surface, key):
            if w not in FILLER and not w.isdigit():
                self.words.setdefault(w, s)
                if meaning.kind == "metric":
                    words = self.glossary_metric_words if meaning.via.startswith("glossary") else self.metric_words
                    words.setdefault(s, set()).add(meaning.name)

    # ---- matching -------------------------------------------------------------------------
    def match(self, tokens: Sequence[Token], skip: set[int], stems_of: dict[int, str] | None = None,
              no_metric_at: set[int] | None = None) -> list[Match]:
        """Non-overlapping matches, longest first from the left; `stems_of` overrides stems (typo fixes); a
        phrase starting at an index of `no_metric_at` does not stand for a metric there."""
        stems_of = stems_of or {}
        no_metric_at = no_metric_at or set()
        out: list[Match] = []
        i, n = 0, len(tokens)
        while i < n:
            if i in skip:
                i += 1
                continue
            found = None
            for length in range(min(MAX_PHRASE, n - i), 0, -1):
                span = range(i, i + length)
                if any(k in skip for k in span):
                    continue
                key = tuple(stems_of.get(k, tokens[k].stem) for k in span)
                entries = self.phrases.get(key)
                if i in no_metric_at:
                    entries = [e for e in entries or [] if e.meaning.kind != "metric"]
                if not entries:
                    continue
                surface = tuple(tokens[k].low for k in span)
                exact = [e for e in entries if e.surface == surface and not (set(span) & set(stems_of))]
                # Written exactly as a phrase of one kind beats the same stems of that kind ("sales" is revenue,
                # not the "sale" of orders), never another kind's ("tickets" stays a metric and an entity).
                kinds = {e.meaning.kind for e in exact}
                best = exact + [e for e in entries if e.meaning.kind not in kinds]
                found = Match(i, i + length, list({e.meaning.key: e.meaning for e in best}.values()), bool(exact))
                break
            if found is None or (found.end - found.start == 1 and tokens[i].is_filler and not found.exact):
                i += 1
                continue
            out.append(found)
            i = found.end
        return out

    def corrections(self, tokens: Sequence[Token], skip: set[int]) -> dict[int, tuple[str, str]]:
        """Typos: token index -> (the vocabulary word it is close to, that word's stem), for words that are
        not grammar, not numbers and not themselves vocabulary."""
        known_stems = {s for key in self.phrases for s in key}
        out: dict[int, tuple[str, str]] = {}
        for t in tokens:
            if (t.index in skip or t.is_filler or t.is_number or len(t.low) < FUZZY_MIN_LENGTH
                    or t.stem in known_stems):
                continue
            close = difflib.get_close_matches(t.low, list(self.words), n=2, cutoff=FUZZY_CUTOFF)
            if not close:
                continue
            if len(close) > 1 and self.words[close[0]] != self.words[close[1]] and (
                    difflib.SequenceMatcher(None, t.low, close[0]).ratio()
                    == difflib.SequenceMatcher(None, t.low, close[1]).ratio()):
                continue  # two words equally close: not a typo we can fix
            out[t.index] = (close[0], self.words[close[0]])
        return out

    def metrics_with_word(self, stem: str) -> set[str]:
        """Metrics whose names or labels hold this stem, else those whose glossary terms do."""
        return self.metric_words.get(stem) or self.glossary_metric_words.get(stem) or set()


# ---- building it from the catalog ----------------------------------------------------------------
def build_vocabulary(catalog: Catalog, values: dict[tuple[str, str], list[str]]) -> Vocabulary:
    """The vocabulary of a workspace: its metrics, dimensions, entities, glossary and the dimension values seen
    in the data (`values`, by (model, dimension))."""
    voc = Vocabulary()
    sem = catalog.semantic
    metric_names = {m.name for m in sem.metrics}
    for m in sem.metrics:
        meaning = Meaning("metric", m.name)
        voc.add(m.name, meaning)
        if m.label:
            voc.add(m.label, Meaning("metric", m.name, via="label"))
            bare = without_parentheses(m.label)
            if bare != m.label:
                voc.add(bare, Meaning("metric", m.name, via="label"))
    models_by_table: dict[str, list[SemanticModel]] = {}
    for model in sem.semantic_models:
        models_by_table.setdefault(model.table.lower(), []).append(model)
        _add_model(voc, catalog, model)
    _add_column_metrics(voc, catalog)
    for t in catalog.glossary.values():
        _add_glossary(voc, t.name, [t.name, *t.synonyms], t.related, metric_names, models_by_table, values)
    for (model, dim), vals in values.items():
        for v in vals:
            voc.add(v, Meaning("value", v, model, dim))
    return voc


def _add_column_metrics(voc: Vocabulary, catalog: Catalog) -> None:
    """A column's name and synonyms name the one metric that sums it, unfiltered ("units" is `units_sold`,
    "visitors" the uploaded table's `store_visits_visitors`)."""
    sem = catalog.semantic
    by_column: dict[tuple[str, str], set[str]] = {}
    for m in sem.metrics:
        measure = m.type_params.measure
        if m.type.value != "simple" or measure is None or m.filter or measure.filter:
            continue
        for model in sem.semantic_models:
            ms = next((x for x in model.measures if x.name == measure.name), None)
            if ms is not None and ms.agg.value == "sum" and (ms.expr or ms.name).isidentifier():
                by_column.setdefault((model.table.lower(), (ms.expr or ms.name).lower()), set()).add(m.name)
    for (table_name, column), metrics in by_column.items():
        table = catalog.table(table_name)
        col = table.column(column) if table else None
        if col is None or len(metrics) != 1:
            continue
        metric = next(iter(metrics))
        for phrase in [col.name.replace("_", " "), *col.synonyms]:
            voc.add(phrase, Meaning("metric", metric, via=f"the sum of column `{table.name}.{col.name}`"))


def _add_model(voc: Vocabulary, catalog: Catalog, model: SemanticModel) -> None:
    table = catalog.table(model.table)
    own = [e.name for e in model.entities if e.type in _JOINABLE]
    for e in own:
        voc.add(e, Meaning("entity", e))
        voc.add(model.name, Meaning("entity", e))
        voc.add(model.table, Meaning("entity", e))
        for syn in table.synonyms if table else []:
            voc.add(syn, Meaning("entity", e, via=f"synonym of table `{table.name}`"))
    for d in model.dimensions:
        if d.type != DimensionType.categorical:
            continue
        meaning = Meaning("dimension", d.name, model.name, d.name)
        voc.add(d.name, meaning)
        if d.label:
            voc.add(d.label, Meaning("dimension", d.name, model.name, d.name, via="label"))
        for e in own:
            voc.add(f"{e} {d.name}", meaning)
        col = table.column(d.column_expr) if table else None
        for syn in col.synonyms if col else []:
            voc.add(syn, Meaning("dimension", d.name, model.name, d.name, via=f"synonym of column `{table.name}.{col.name}`"))


def _add_glossary(voc: Vocabulary, name: str, phrases: list[str], related: list[str], metric_names: set[str],
                  models_by_table: dict[str, list[SemanticModel]], values: dict[tuple[str, str], list[str]]) -> None:
    via = f"glossary term `{name}`"
    metrics = [r.split(":", 1)[1] for r in related if r.startswith("metric:") and r.split(":", 1)[1] in metric_names]
    if metrics:
        # A term about several metrics stands for the one it is named after, if any ("return rate").
        named = [m for m in metrics if stems(m) == stems(name)]
        for p in phrases:
            for m in named or metrics:
                voc.add(p, Meaning("metric", m, via=via))
        return
    for ref in related:
        table, _, column = ref.partition(".")
        for model in models_by_table.get(table.lower(), []):
            if not column:
                for e in model.entities:
                    if e.type in _JOINABLE:
                        for p in phrases:
                            voc.add(p, Meaning("entity", e.name, via=via))
                continue
            for d in model.dimensions:
                if d.type != DimensionType.categorical or d.column_expr.lower() != column.lower():
                    continue
                value = _value_named_in(name, values.get((model.name, d.name), []))
                for p in phrases:
                    # A term named after one of the column's values ("enterprise customer") stands for the value.
                    voc.add(p, Meaning("value", value, model.name, d.name, via=via) if value is not None
                            else Meaning("dimension", d.name, model.name, d.name, via=via))


def _value_named_in(text: str, values: list[str]) -> str | None:
    words = stems(text)
    for v in values:
        vs = stems(v)
        if vs and any(words[i:i + len(vs)] == vs for i in range(len(words) - len(vs) + 1)):
            return v
    return None

"""Reads a metric question ("revenue by region last quarter", "top 5 products by revenue", "AOV for
enterprise customers in EMEA") into the arguments of one semantic-layer query, or into a plain reply that
says what was ambiguous or unknown.

It uses the workspace's own vocabulary and dimension values; it never runs the query and never guesses
between two readings: an ambiguous phrase becomes a question back.
"""
from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from catalog.suggestions import close_matches
from agent.planners.metric_matching import Match, Meaning, Vocabulary
from agent.planners.question_words import Token, quoted
from agent.planners.semantic_names import Reachable, SemanticNames, safe_reachable
from agent.planners.time_phrases import TimeReading, number_of, read_time
from agent.planners.value_filters import period_filter, time_filters, value_filter

GROUP_MARKERS = frozenset({"by", "per", "each", "across", "every"})
TOP_WORDS = frozenset({"top", "best", "highest", "most", "largest", "biggest", "greatest", "leading", "maximum"})
BOTTOM_WORDS = frozenset({"bottom", "worst", "lowest", "least", "smallest", "fewest", "minimum"})
NEGATIONS = frozenset({"excluding", "except", "not", "without", "exclude", "outside", "non"})
FILTER_WORDS = frozenset({"in", "for", "from", "via", "through", "on", "with", "at", "where", "within", "among",
                          "only", "excluding", "except", "without", "of"})
# Verbs a metric question uses around its words; understood as grammar, never reported as unknown.
_VERBS = frozenset({"placed", "made", "make", "happened", "came", "generated", "generate", "earned", "earn",
                    "brought", "bring", "sell", "selling", "bought", "buy", "did", "had", "got", "opened",
                    "received", "split", "break", "broken", "down", "grouped", "sorted", "ranked", "rank",
                    "ordered", "now", "please", "me", "us", "metric", "metrics", "kpi", "measure", "add", "also",
                    "plus", "well", "instead", "rather", "same", "again", "what", "about", "how", "table", "one",
                    "ones", "so", "far", "number", "count", "many", "much", "total", "sum", "average",
                    "avg", "mean", "value", "values", "been", "being", "have", "has"})
DEFAULT_TOP = 10
# Words that ask for another computation than a metric's own (its sum or count): left unused, they would
# silently change the figure, so the question is not answered as a plain metric.
# Each word with the computations that answer it (a measure's aggregation, or a ratio or derived metric).
_FIGURE_WORDS = {
    **dict.fromkeys(("median", "percentile", "quantile"), {"median", "percentile"}),
    **dict.fromkeys(("minimum", "min"), {"min"}), **dict.fromkeys(("maximum", "max"), {"max"}),
    **dict.fromkeys(("distinct", "unique"), {"count_distinct"}),
    **dict.fromkeys(("average", "avg"), {"average", "ratio", "derived"}),  # not "mean": "I mean"
    **dict.fromkeys(("share", "percentage", "proportion", "fraction"), {"ratio", "derived"}),
}


def _changes_the_figure(word: str, computes: set[str]) -> bool:
    """Whether a word asks for a computation none of the question's metrics makes (a median of a sum)."""
    if len(word) in (3, 4) and word[0] == "p" and word[1:].isdigit():
        word = "percentile"
    return word in _FIGURE_WORDS and not (_FIGURE_WORDS[word] & computes)
# Words that set values side by side ("EMEA vs APAC", "web or mobile", "between enterprise and smb").
COMPARE_WORDS = frozenset({"vs", "versus", "compared", "compare", "comparing", "comparison", "against", "or",
                           "between", "difference", "differ", "differences", "contrast"})


@dataclass
class Top:
    n: int
    descending: bool
    words: str
    used: set[int]
    target_at: int | None  # where the ranked thing is named ("top 5 products"), if right after the words


@dataclass
class Ask:
    """One metric question, read: what to query and how each part was read (for the reply)."""
    metrics: list[str]
    named_metrics: bool  # the question named its metrics (not taken from an earlier turn)
    group_by: list[str] = field(default_factory=list)  # dimensions and entities (no time grain)
    grain: str | None = None
    time: TimeReading = field(default_factory=TimeReading)
    filters: dict[str, tuple[list[str], bool]] = field(default_factory=dict)  # name -> (values, negated)
    top: Top | None = None
    rank_metric: str | None = None
    notes: list[str] = field(default_factory=list)  # how words were read: synonyms, typos
    left_out: list[str] = field(default_factory=list)  # words not understood, not used

    def args(self) -> dict[str, Any]:
        """The `query_metrics` arguments."""
        group_by = list(self.group_by) + ([f"metric_time__{self.grain}"] if self.grain else [])
        where = ([period_filter(self.grain, self.time.points)] if self.time.points and self.grain
                 else time_filters(self.time.start, self.time.end))
        where += [value_filter(name, vals, neg) for name, (vals, neg) in self.filters.items()]
        order_by: list[str] = []
        limit = None
        if self.top is not None:
            metric = self.rank_metric or self.metrics[0]
            order_by = [("-" if self.top.descending else "") + metric]
            limit = self.top.n
        elif self.grain:
            order_by = [f"metric_time__{self.grain}", *self.group_by]
        elif self.group_by:
            order_by = ["-" + self.metrics[0]]
        return {"metrics": list(self.metrics), "group_by": group_by, "where": where, "order_by": order_by,
                "limit": limit}

    def summary(self) -> str:
        parts = ["metric" + ("s " if len(self.metrics) > 1 else " ") + quoted(self.metrics)]
        if self.group_by or self.grain:
            parts.append("by " + quoted([*self.group_by, *([f"metric_time__{self.grain}"] if self.grain else [])]))
        if self.time.points and self.grain:
            parts.append(f"time: only the {self.grain}s starting " + ", ".join(d.isoformat() for d in self.time.points))
        elif self.time.has_range:
            parts.append("time: " + self.time.describe())
        for name, (vals, neg) in self.filters.items():
            parts.append(f"{'excluding' if neg else 'only'} `{name}` {'in ' if len(vals) > 1 else '= '}{quoted(vals)}")
        if self.top is not None:
            way = "top" if self.top.descending else "bottom"
            parts.append(f"{way} {self.top.n} by `{self.rank_metric or self.metrics[0]}`")
        text = "I read this as: " + "; ".join(parts) + "."
        if self.notes:
            text += " (" + "; ".join(self.notes) + ".)"
        if self.left_out:
            them = "it" if len(self.left_out) == 1 else "them"
            text += f" I did not understand {quoted(self.left_out)} and left {them} out."
        return text


@dataclass
class Unclear:
    """The question could not be read into one query: the reply says why and what would work.

    `reason`: `ambiguous` (two readings), `unknown` (words that name nothing known), `no_metric` (nothing
    names a metric, and nothing is unknown: a follow-up may supply the metric), `other`."""
    text: str
    reason: str = "other"

    @property
    def no_metric(self) -> bool:
        return self.reason in ("no_metric", "unknown")


class MetricQuestionReader:
    def __init__(self, vocabulary: Vocabulary, names: SemanticNames, values: dict[tuple[str, str], list[str]]):
        self.voc = vocabulary
        self.names = names
        self.values = values

    def read(self, tokens: Sequence[Token], today: dt.date, skip: set[int] | None = None,
             fallback_metrics: list[str] | None = None, follow_up: bool = False) -> Ask | Unclear:
        """The question read into one query. With `fallback_metrics` (the last query's), a question that
        names no metric uses them when it reads as a follow-up or names nothing metric-like."""
        skip = set(skip or ())
        time = read_time(tokens, today, skip)
        skip |= time.used
        top = _read_top(tokens, skip)
        if top is not None:
            skip |= top.used
        fixes = self.voc.corrections(tokens, skip)
        # What follows a negation is what to leave out, a value, never a metric ("excluding returned orders").
        negated = {j for t in tokens if t.low in NEGATIONS for j in [_first_after(tokens, t.index + 1, skip)]}
        matches = self.voc.match(tokens, skip, {i: s for i, (_, s) in fixes.items()}, no_metric_at=negated)
        notes = [f"read `{tokens[i].text}` as `{w}`" for i, (w, _) in sorted(fixes.items())]
        roles = {id(m): _role(tokens, m, top) for m in matches}

        picked = self._metrics(tokens, matches, roles, skip, fallback_metrics, follow_up)
        if isinstance(picked, Unclear):
            return picked
        metrics, named, metric_matches, used, metric_notes = picked
        matches = [m for m in matches if m in metric_matches or not set(m.indexes) & used]
        reach = safe_reachable(self.names, metrics)
        if reach is None:
            return Unclear(f"the metrics {quoted(metrics)} cannot be queried together: they share no dimension. "
                           "Ask for them one at a time.")
        ask = Ask(metrics=metrics, named_metrics=named, time=time, grain=time.grain, top=top,
                  notes=notes + metric_notes)
        if top is not None:
            ask.rank_metric = next((m.of("metric")[0].name for m in metric_matches if roles[id(m)] == "rank"), None)
        problem = self._place(tokens, [m for m in matches if m not in metric_matches], roles, reach, ask)
        if problem is None and any(t.low in COMPARE_WORDS for t in tokens):
            _one_row_per_side(ask)
        if problem is None and (time.grain or time.has_range) and not reach.has_time:
            words = ", ".join([*time.phrases, *([time.grain_words] if time.grain_words else [])])
            has = "has" if len(metrics) == 1 else "have"
            problem = f"{quoted(metrics)} {has} no time dimension, so `{words}` cannot apply."
        if problem is None and top is not None and not ask.group_by and not ask.grain:
            problem = (f"`{top.words}` of what? Name what to rank, e.g. \"top {top.n} "
                       f"{self._example_group(reach)} by {metrics[0].replace('_', ' ')}\".")
        if problem is None:
            problem = self._left_out(tokens, used | {i for m in matches for i in m.indexes} | skip | set(fixes),
                                     ask, reach)
        return ask if problem is None else Unclear(problem)

    # ---- the steps of reading ---------------------------------------------------------------
    def _metrics(self, tokens: Sequence[Token], matches: list[Match], roles: dict[int, str], skip: set[int],
                 fallback: list[str] | None, follow_up: bool
                 ) -> tuple[list[str], bool, list[Match], set[int], list[str]] | Unclear:
        """(metrics, whether the question named them, the matches that did, the words used, notes)."""
        metric_matches = [m for m in matches if m.of("metric") and (roles[id(m)] != "group"
                                                                     or not m.of("dimension", "entity", "value"))]
        # "csat for urgent tickets": a word that is a metric and an entity, right after a value, qualifies the
        # value when another metric is named; alone ("open tickets by priority") it is the metric.
        strong = [m for m in metric_matches if not (m.of("entity") and any(
            p.of("value") and p.end <= m.start and _adjacent(tokens, p, m, matches) for p in matches))]
        if not strong and fallback and follow_up:  # "excluding returned orders": the value's noun, not a metric
            metric_matches = []
        metric_matches = strong or metric_matches
        metrics: list[str] = []
        notes: list[str] = []
        for m in metric_matches:
            options = list(dict.fromkeys(x.name for x in m.of("metric")))
            if len(options) > 1:
                return Unclear(f"`{_words(tokens, m)}` could mean the metric {_or(options)}: which one? "
                               f"Ask again with its name, e.g. \"{options[0].replace('_', ' ')}\".", "ambiguous")
            metrics.append(options[0])
            notes += _via(tokens, m, m.of("metric")[0])
        used = {i for m in metric_matches for i in m.indexes}
        if metrics:
            return list(dict.fromkeys(metrics)), True, metric_matches, used, notes
        if fallback and follow_up:
            return list(fallback), False, [], set(), []
        guess = self._metric_from_words(tokens, skip, matches)
        if isinstance(guess, Unclear):
            if guess.reason == "no_metric" and fallback:
                return list(fallback), False, [], set(), []
            return guess
        metrics, note, used = guess
        return metrics, True, [], used, [note]

    def _place(self, tokens: Sequence[Token], others: list[Match], roles: dict[int, str], reach: Reachable,
               ask: Ask) -> str | None:
        """Dimensions, entities and values into the ask's group-by and filters; a problem, if any."""
        values: list[tuple[Match, list[Meaning]]] = []
        groups: list[tuple[Match, Meaning]] = []
        entities: list[tuple[Match, str]] = []
        for m in others:
            dims = [x for x in m.of("dimension") if (x.model, x.dimension) in reach.dimensions]
            ents = [x for x in m.of("entity") if self.names.group_name_for_entity(reach, x.name)]
            vals = [x for x in m.of("value") if (x.model, x.dimension) in reach.dimensions]
            if roles[id(m)] == "group" and (dims or ents):
                vals = []
            if vals:
                values.append((m, vals))
            elif dims:
                dims = [x for x in dims if x.model in reach.own_models] or dims  # the metric's own model first
                options = sorted({reach.dimensions[(x.model, x.dimension)] for x in dims})
                if len(options) > 1:
                    return (f"`{_words(tokens, m)}` could be {_or(options)}: which one? Ask again with its full "
                            f"name, e.g. \"by {options[0].replace('__', ' ')}\".")
                groups.append((m, dims[0]))
            elif ents:
                entities.append((m, ents[0].name))
            elif m.of("value") and not m.exact and _previous_word(tokens, m.start) not in FILTER_WORDS:
                ask.left_out.append(_words(tokens, m))  # an ordinary word ("higher") that only resembles a value
            else:
                return self._unreachable(tokens, m, ask.metrics, reach)
        picked = self._values(tokens, values, [(g, d) for g, d in groups if roles[id(g)] != "group"],
                              [(g, e) for g, e in entities if roles[id(g)] != "group"], reach)
        if isinstance(picked, str):
            return picked
        ask.filters, qualifiers = picked
        for m, d in groups:
            if id(m) not in qualifiers:
                name = reach.dimensions[(d.model, d.dimension)]
                ask.group_by += [] if name in ask.group_by else [name]
                ask.notes += _via(tokens, m, d)
        for m, entity in entities:
            if id(m) not in qualifiers and (roles[id(m)] == "group" or ask.top is not None):
                name = self.names.group_name_for_entity(reach, entity)
                ask.group_by += [] if not name or name in ask.group_by else [name]
        return None

    def _computes(self, metrics: list[str]) -> set[str]:
        """What the metrics compute: their measures' aggregations, or `ratio` / `derived`."""
        manifest = self.names.manifest.with_measure_metrics()
        measures = {ms.name: ms.agg.value for sm in manifest.semantic_models for ms in sm.measures}
        out: set[str] = set()
        for name in metrics:
            metric = manifest.metric(name)
            if metric is None:
                continue
            measure = metric.type_params.measure
            if measure is not None and metric.type.value in ("simple", "cumulative"):
                out.add(measures.get(measure.name, "sum"))
            else:
                out.add(metric.type.value)
        return out

    def _left_out(self, tokens: Sequence[Token], used: set[int], ask: Ask, reach: Reachable) -> str | None:
        """Words not understood: a problem where they must have meant a dimension, a value or a date; else
        they are listed as left out."""
        for t in tokens:
            if t.index not in used and _changes_the_figure(t.low, self._computes(ask.metrics)):
                return (f"I can't compute the `{t.text}` here: I found {quoted(ask.metrics)}, which is not a "
                        f"{t.text}, and answering with it would be another figure than the one you asked for. "
                        "Name the column to aggregate, e.g. \"median amount of order_items in 2025\".")
            if t.index in used or t.is_filler or t.low in _VERBS or t.low in NEGATIONS:
                continue
            before = _previous_word(tokens, t.index)
            if before in GROUP_MARKERS:
                options = close_matches(t.low, reach.all_names())
                hint = f"did you mean {_or(options)}?" if options else "it can be split by " + quoted(reach.all_names()[:12])
                return f"I know no dimension `{t.text}` for {quoted(ask.metrics)}: {hint}"
            if len(t.low) == 10 and t.low[4] == "-" and t.low[7] == "-":
                return f"`{t.text}` is not a date: write dates as year-month-day, e.g. 2026-03-31."
            if before in FILTER_WORDS and not t.is_number:
                return self._unknown_value(t, ask.metrics, reach)
            ask.left_out.append(t.text)
        return None

    def explain(self, tokens: Sequence[Token], today: dt.date) -> tuple[list[str], list[str]]:
        """What each understood phrase means, and the words not understood, for a reply that gives up."""
        time = read_time(tokens, today)
        understood = [f"`{p}`" for p in time.phrases]
        if time.has_range:
            understood[-1] = f"time {time.describe()}"
        skip = set(time.used)
        top = _read_top(tokens, skip)
        if top is not None:
            skip |= top.used
            understood.append(f"`{top.words}` ({'top' if top.descending else 'bottom'} {top.n})")
        matches = self.voc.match(tokens, skip)
        for m in matches:
            kinds = []
            for x in m.meanings:
                if x.kind == "metric":
                    kinds.append(f"metric `{x.name}`")
                elif x.kind == "value":
                    kinds.append(f"a value of `{x.model}.{x.dimension}`")
                elif x.kind == "dimension":
                    kinds.append(f"dimension `{x.model}.{x.dimension}`")
                else:
                    kinds.append(f"entity `{x.name}`")
            understood.append(f"`{_words(tokens, m)}` ({' or '.join(dict.fromkeys(kinds))})")
        used = skip | {i for m in matches for i in m.indexes}
        unknown = [t.text for t in tokens if t.index not in used and not t.is_filler and t.low not in _VERBS]
        return understood, unknown

    # ---- parts ------------------------------------------------------------------------------
    def _metric_from_words(self, tokens: Sequence[Token], skip: set[int],
                           matches: list[Match]) -> tuple[list[str], str, set[int]] | Unclear:
        """No phrase named a metric: words that are part of metric names ("customers", "growth"), or words
        that name a metric the workspace does not have ("churn rate"), with the closest it has."""
        in_match = {i for m in matches for i in m.indexes}
        content = [t for t in tokens if t.index not in skip and not t.is_filler and t.low not in _VERBS]
        candidates: dict[str, set[int]] = {}
        for t in content:
            for metric in self.voc.metrics_with_word(t.stem):
                candidates.setdefault(metric, set()).add(t.index)
        unknown = [t for t in content if t.index not in in_match and not self.voc.metrics_with_word(t.stem)]
        if unknown:
            asked = [t for t in content if t.index not in in_match or any(t.index in ix for ix in candidates.values())]
            words = " ".join(t.text for t in asked)
            known = [m.name for m in self.names.manifest.metrics]
            score = {m: difflib.SequenceMatcher(None, words.lower(), m.replace("_", " ")).ratio() for m in known}
            hint = sorted(set(candidates) | {m for m in known if score[m] >= 0.6}, key=lambda m: (-score[m], m))[:3]
            text = f"I know no metric `{words}`" + (
                f"; did you mean {_or(hint)}?" if hint else f"; the metrics include {quoted(known[:8])}." if known
                else ".")
            return Unclear(text, "unknown")
        if not candidates:
            return Unclear("", "no_metric")
        best = max(len(ix) for ix in candidates.values())
        top = sorted(m for m, ix in candidates.items() if len(ix) == best)
        words = " ".join(tokens[i].text for i in sorted(set().union(*(candidates[m] for m in top))))
        if len(top) > 1:
            return Unclear(f"`{words}` could mean the metric {_or(top)}: which one?", "ambiguous")
        return [top[0]], f"took `{words}` to mean metric `{top[0]}`", candidates[top[0]]

    def _values(self, tokens: Sequence[Token], values: list[tuple[Match, list[Meaning]]],
                groups: list[tuple[Match, Meaning]], entities: list[tuple[Match, str]],
                reach: Reachable) -> tuple[dict[str, tuple[list[str], bool]], set[int]] | str:
        """Filters from the values named, and the dimension or entity words that only qualify a value
        ("the mobile channel", "enterprise customers")."""
        filters: dict[str, tuple[list[str], bool]] = {}
        qualifiers: set[int] = set()
        for m, vals in values:
            keys = {(x.model, x.dimension) for x in vals}
            near_groups = [(g, d) for g, d in groups if _adjacent(tokens, m, g)]
            near_entities = [(g, e) for g, e in entities if _adjacent(tokens, m, g)]
            if len(keys) > 1:
                named = {(d.model, d.dimension) for _, d in near_groups} & keys
                named |= {k for _, e in near_entities for k in keys if self.names.entity_model(e) == k[0]}
                # Values compared side by side share a dimension: "billing compared with shipping" is ticket
                # categories when only the category holds "shipping".
                siblings = [{(x.model, x.dimension) for x in v} for o, v in values if o is not m]
                shared = {k for k in keys if siblings and all(k in sib for sib in siblings)}
                if len(named) == 1:
                    keys = named
                elif len(shared) == 1:
                    keys = shared
                else:
                    options = sorted(reach.dimensions[k] for k in keys)
                    return (f"`{_words(tokens, m)}` is a value of {_or(options)}: which one? Say, for example, "
                            f"\"{_words(tokens, m)} {options[0].split('__')[-1].replace('_', ' ')}\".")
            key = next(iter(keys))
            for g, d in near_groups:
                if (d.model, d.dimension) == key:
                    qualifiers.add(id(g))
            for g, e in near_entities:
                if self.names.entity_model(e) == key[0]:
                    qualifiers.add(id(g))
            name = reach.dimensions[key]
            value = next(x for x in vals if (x.model, x.dimension) == key)
            negate = _negated(tokens, m.start)
            old, old_neg = filters.get(name, ([], negate))
            if value.name not in old:
                old = [*old, value.name]
            filters[name] = (old, old_neg and negate)
        return filters, qualifiers

    def _unreachable(self, tokens: Sequence[Token], m: Match, metrics: list[str], reach: Reachable) -> str:
        words = _words(tokens, m)
        vals = m.of("value")
        if vals:
            where = _or(sorted({f"{x.model}.{x.dimension}" for x in vals}))
            return (f"`{words}` is a value of {where}, which {quoted(metrics)} cannot be filtered by; "
                    f"{quoted(metrics)} can be filtered and split by " + quoted(reach.all_names()[:12]) + ".")
        return (f"{quoted(metrics)} cannot be split by `{words}`; {'it' if len(metrics) == 1 else 'they'} can be "
                "split by " + quoted(reach.all_names()[:12]) + ".")

    def _unknown_value(self, t: Token, metrics: list[str], reach: Reachable) -> str:
        pool = {v: reach.dimensions[k] for k, vs in self.values.items() if k in reach.dimensions for v in vs}
        low = {v.lower(): v for v in pool}
        close = [low[x] for x in difflib.get_close_matches(t.low, list(low), n=3, cutoff=0.75)]
        if close:
            hint = "did you mean " + " or ".join(f"`{c}` ({pool[c]})" for c in close) + "?"
        else:
            dims = sorted({reach.dimensions[k] for k in self.values if k in reach.dimensions})
            hint = "filters can use the values of " + quoted(dims) + "."
        return f"I found `{t.text}` in no dimension that {quoted(metrics)} can be filtered by; {hint}"

    def _example_group(self, reach: Reachable) -> str:
        from agent.planners.catalog_answers import example_ranked

        return example_ranked(self.names, reach) or "months"


def _one_row_per_side(ask: Ask) -> None:
    """A comparison of two or more values of one dimension groups by it: one row per side, not one total."""
    for name, (vals, negated) in ask.filters.items():
        if len(vals) > 1 and not negated and name not in ask.group_by:
            ask.group_by.append(name)
            ask.notes.append(f"one row per `{name}`, to compare {quoted(vals)}")


# ---- small readers ---------------------------------------------------------------------------------
def _read_top(tokens: Sequence[Token], skip: set[int]) -> Top | None:
    """"top 5", "5 best", "bottom 3", "the highest": how many, which way, and where the ranked thing is named."""
    for t in tokens:
        if t.index in skip or (t.low not in TOP_WORDS and t.low not in BOTTOM_WORDS):
            continue
        i = t.index
        if t.low in ("most", "least") and i + 1 < len(tokens) and tokens[i + 1].low in ("recent", "common", "of"):
            continue
        used = {i}
        n = number_of(tokens[i + 1].low) if i + 1 < len(tokens) and i + 1 not in skip else None
        if n is not None:
            used.add(i + 1)
        elif i > 0 and i - 1 not in skip and (n := number_of(tokens[i - 1].low)) is not None:
            used.add(i - 1)
        # "top 5 products", "5 best agents": the ranked thing follows; "the highest revenue": the metric does.
        if n is None:  # "which three categories sold the most": a number word earlier names how many
            n = next((number_of(tokens[k].low) for k in range(i) if k not in skip and not tokens[k].is_number
                      and number_of(tokens[k].low)), None)
            used |= {k for k in range(i) if k not in skip and not tokens[k].is_number and number_of(tokens[k].low)}
        follows = t.low in ("top", "bottom") or n is not None
        target = _first_after(tokens, max(used) + 1, skip) if follows else None
        words = " ".join(tokens[k].text for k in sorted(used))
        return Top(n or (DEFAULT_TOP if t.low in ("top", "bottom") else 1), t.low in TOP_WORDS, words, used,
                   target if target is not None and target < len(tokens) else None)
    return None


def _role(tokens: Sequence[Token], m: Match, top: Top | None) -> str:
    """`group` (what to split or rank by), `rank` (the metric that ranks, "by revenue" after "top 5 products")
    or `plain`."""
    if top is not None and top.target_at is not None and m.start == top.target_at:
        return "group"
    if _after_marker(tokens, m.start):
        if top is not None and m.of("metric") and (top.target_at is None or m.start > top.target_at):
            return "rank"
        return "group"
    return "plain"


def _first_after(tokens: Sequence[Token], i: int, skip: set[int]) -> int:
    while i < len(tokens) and (i in skip or tokens[i].low in ("the", "a", "all", "any")):
        i += 1
    return i


def _previous_word(tokens: Sequence[Token], i: int) -> str:
    """The word before token `i`, past articles."""
    j = i - 1
    while j >= 0 and tokens[j].low in ("the", "a", "an", "our"):
        j -= 1
    return tokens[j].low if j >= 0 else ""


def _after_marker(tokens: Sequence[Token], i: int) -> bool:
    return _previous_word(tokens, i) in GROUP_MARKERS


def _adjacent(tokens: Sequence[Token], a: Match, b: Match, others: Sequence[Match] = ()) -> bool:
    """Two matches with at most two grammar words, or the value's dimension, between them ("the mobile
    channel", "EMEA region", "urgent priority tickets")."""
    lo, hi = (a, b) if a.start < b.start else (b, a)
    gap = [k for k in range(lo.end, hi.start)
           if not any(o.start <= k < o.end and o.of("dimension") and not o.of("metric") for o in others)]
    return len(gap) <= 2 and all(tokens[k].is_filler and tokens[k].low not in GROUP_MARKERS for k in gap)


def _negated(tokens: Sequence[Token], i: int) -> bool:
    """A negation among the three words before token `i` ("excluding EMEA", "other than web")."""
    for j in range(max(0, i - 3), i):
        if tokens[j].low in NEGATIONS or (tokens[j].low == "other" and j + 1 < i and tokens[j + 1].low == "than"):
            return True
    return False


def _words(tokens: Sequence[Token], m: Match) -> str:
    return " ".join(tokens[i].text for i in m.indexes)


def _or(options: list[str]) -> str:
    items = [f"`{o}`" for o in options]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _via(tokens: Sequence[Token], m: Match, meaning: Meaning) -> list[str]:
    if not meaning.via:
        return []
    named = meaning.via.startswith("glossary") and meaning.name in meaning.via  # "glossary term `revenue`"
    return [f"`{_words(tokens, m)}` is {meaning.via}" + ("" if named else f", so `{meaning.name}`")]


"""What kind of request a question is, when it is not a metric question: help, listing tables or metrics,
describing a table, its owners, PII, lineage, row counts, a catalog search, or creating a derived table,
with the table, column or words it names.

Deterministic reading of words against the workspace's table and column names; it never plans and
never reads data.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from catalog.metadata import Catalog
from agent.planners.question_words import FILLER, Token, stems, without_parentheses

IntentKind = Literal["help", "list_tables", "list_metrics", "describe", "define", "owners", "pii", "lineage", "search",
                     "row_count", "derived", "none"]

HELP_WORDS = frozenset({"help", "hi", "hello", "hey", "examples", "example", "start", "commands", "usage", "ask",
                        "capabilities", "guide", "questions", "question", "able", "understand", "work", "works",
                        "use", "things", "anything", "kind", "sort", "type", "thanks", "thank"})
LINEAGE_WORDS = frozenset({"lineage", "upstream", "provenance"})
_FROM_VERBS = frozenset({"come", "comes", "came", "derived", "computed", "calculated", "built", "made", "sourced"})
OWNER_WORDS = frozenset({"own", "owns", "owned", "owner", "owners", "ownership", "responsible", "maintains",
                         "maintained", "maintainer", "steward", "stewards"})
DEFINE_WORDS = frozenset({"define", "definition", "mean", "means", "meaning", "defined", "calculated", "computed",
                          "calculate", "compute", "formula"})
PII_WORDS = frozenset({"pii", "personal", "sensitive", "gdpr", "identifiable", "private", "personally"})
DESCRIBE_WORDS = frozenset({"describe", "description", "schema", "columns", "column", "fields", "field",
                            "structure", "contains", "contain", "inside", "explain", "definition", "details",
                            "tell", "look", "looks"})
ROW_WORDS = frozenset({"rows", "records", "lines", "entries", "size", "big", "large"})
TABLE_WORDS = frozenset({"table", "tables", "datasets", "dataset"})
METRIC_LIST_WORDS = frozenset({"metrics", "kpis", "kpi", "measures", "measure", "measurements"})
SEARCH_START = frozenset({"where", "find", "search", "locate", "lookup"})
SEARCH_FILLER = frozenset({"stored", "store", "stores", "kept", "keep", "located", "found", "live", "lives", "held",
                           "hold", "holds", "contains", "contain", "has", "have", "column", "columns", "table",
                           "tables", "field", "fields", "find", "search", "locate", "lookup", "look", "catalog",
                           "information", "info", "saved", "recorded", "put"})
CREATE_VERBS = frozenset({"create", "make", "build", "save", "materialize", "materialise", "write", "persist",
                          "store"})
_NAMING = frozenset({"called", "named", "name"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass
class Intent:
    kind: IntentKind
    table: str | None = None
    column: str | None = None
    term: str | None = None  # a glossary term (who owns "revenue", what "AOV" means)
    metric: str | None = None
    text: str = ""  # search words
    name: str | None = None  # the derived table's name, if the question gives one
    used: set[int] = field(default_factory=set)  # tokens the intent consumed


@dataclass
class _Mention:
    table: str
    start: int
    end: int
    by_name: bool  # named as the table is, not by a synonym


def _table_phrases(catalog: Catalog) -> dict[tuple[str, ...], tuple[str, bool]]:
    out: dict[tuple[str, ...], tuple[str, bool]] = {}
    for t in catalog.tables.values():
        out.setdefault(stems(t.name), (t.name, True))
    for t in catalog.tables.values():  # synonyms after names: a name always wins
        for syn in t.synonyms:
            out.setdefault(stems(syn), (t.name, False))
    return out


def find_tables(tokens: Sequence[Token], catalog: Catalog, skip: set[int] | None = None) -> list[_Mention]:
    """Tables the words name, those named by their own name first, then by synonyms, each in text order."""
    phrases = _table_phrases(catalog)
    longest = max((len(k) for k in phrases), default=0)
    skip = skip or set()
    out: list[_Mention] = []
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            span = range(i, i + n)
            if any(k in skip for k in span):
                continue
            found = phrases.get(tuple(tokens[k].stem for k in span))
            if found is not None:
                out.append(_Mention(found[0], i, i + n, found[1]))
                i += n
                break
        else:
            i += 1
    return sorted(out, key=lambda m: not m.by_name)


def find_column(tokens: Sequence[Token], catalog: Catalog, table: str, skip: set[int]) -> tuple[str, set[int]] | None:
    """A column of `table` the words name (by name or synonym), longest first, and the tokens that name it."""
    t = catalog.table(table)
    if t is None:
        return None
    names = {stems(c.name): c.name for c in t.columns}
    for c in t.columns:
        for syn in c.synonyms:
            names.setdefault(stems(syn), c.name)
    for n in range(max((len(k) for k in names), default=0), 0, -1):
        for i in range(len(tokens) - n + 1):
            span = set(range(i, i + n))
            if span & skip:
                continue
            name = names.get(tuple(tokens[k].stem for k in sorted(span)))
            if name is not None:
                return name, span
    return None


def read_intent(text: str, tokens: Sequence[Token], catalog: Catalog) -> Intent:
    """The kind of request; `none` for a metric question (or anything else the metric reader may explain)."""
    lows = [t.low for t in tokens]
    words = set(lows)
    content = [t for t in tokens if not t.is_filler]
    if all(t.low in HELP_WORDS for t in content):
        return Intent("help")
    keywords = LINEAGE_WORDS | OWNER_WORDS | PII_WORDS | DESCRIBE_WORDS | ROW_WORDS | TABLE_WORDS | CREATE_VERBS
    mentions = find_tables(tokens, catalog, {t.index for t in tokens if t.low in keywords or t.is_filler})
    mentioned = {i for m in mentions for i in range(m.start, m.end)}

    if words & LINEAGE_WORDS or _from_phrase(lows) or ("source" in words or "sources" in words) and mentions:
        if mentions:
            m = mentions[0]
            col = find_column(tokens, catalog, m.table, set(range(m.start, m.end)))
            return Intent("lineage", table=m.table, column=col[0] if col else None)
        if words & LINEAGE_WORDS:
            return Intent("lineage")
    if words & OWNER_WORDS:
        if mentions:
            return Intent("owners", table=mentions[0].table)
        term = _glossary_term(tokens, catalog)
        return Intent("owners", term=term)
    if words & PII_WORDS:
        return Intent("pii", table=mentions[0].table if mentions else None)
    derived = _derived(text, tokens)
    if derived is not None:
        return derived
    if words & DEFINE_WORDS and (definition := _definition(tokens, catalog)) is not None:
        return definition
    rest = [t for t in content if t.index not in mentioned]
    if mentions and words & ROW_WORDS and ({"many", "count", "number", "size", "big", "large"} & words):
        return Intent("row_count", table=mentions[0].table)
    if mentions and len({m.table for m in mentions}) == 1 and (words & (DESCRIBE_WORDS | TABLE_WORDS)) and all(
            t.low in DESCRIBE_WORDS | TABLE_WORDS | {"about", "show", "what"} for t in rest):
        return Intent("describe", table=mentions[0].table)
    if words & TABLE_WORDS and all(t.low in TABLE_WORDS | {"available", "exist", "catalogued", "catalog"}
                                   for t in content):
        return Intent("list_tables")
    if words & METRIC_LIST_WORDS and all(t.low in METRIC_LIST_WORDS | {"defined", "available", "exist", "known"}
                                         for t in content):
        return Intent("list_metrics")
    searching = bool(lows) and lows[0] in SEARCH_START or (
        len(lows) > 1 and lows[0] in ("which", "what") and lows[1] in TABLE_WORDS | {"column", "columns", "field", "fields"})
    if searching:
        words_left = [t.text for t in content if t.low not in SEARCH_FILLER and t.low not in SEARCH_START]
        if words_left:
            return Intent("search", text=" ".join(words_left))
    return Intent("none")


def _from_phrase(lows: list[str]) -> bool:
    return any(a in _FROM_VERBS and b == "from" for a, b in zip(lows, lows[1:]))


def _longest(tokens: Sequence[Token], phrases: dict[str, list[str]]) -> tuple[str | None, int]:
    """The name whose phrase the words hold, the longest phrase winning, and that phrase's length."""
    seq = tuple(t.stem for t in tokens)
    best: tuple[str | None, int] = (None, 0)
    for name, texts in phrases.items():
        for text in texts:
            key = stems(text)
            if len(key) > best[1] and any(seq[i:i + len(key)] == key for i in range(len(seq) - len(key) + 1)):
                best = (name, len(key))
    return best


def _glossary_term(tokens: Sequence[Token], catalog: Catalog) -> str | None:
    return _longest(tokens, {g.name: [g.name, *g.synonyms] for g in catalog.glossary.values()})[0]


def _definition(tokens: Sequence[Token], catalog: Catalog) -> Intent | None:
    """"What does AOV mean?", "how is cumulative revenue calculated?": the longest named term or metric."""
    term, term_len = _longest(tokens, {g.name: [g.name, *g.synonyms] for g in catalog.glossary.values()})
    metric, metric_len = _longest(tokens, {m.name: [m.name, m.label or "", without_parentheses(m.label or "")]
                                           for m in catalog.semantic.metrics})
    if metric_len > term_len:
        term = None
    elif term_len > metric_len:
        metric = None
    if term is None and metric is None:
        return None
    return Intent("define", term=term, metric=metric)


def _derived(text: str, tokens: Sequence[Token]) -> Intent | None:
    """"create a table of …", "save that as a table called x": the command words and the name, if given."""
    lows = [t.low for t in tokens]
    table_at = next((i for i, w in enumerate(lows) if w == "table"), None)
    if table_at is None:
        return None
    verb_at = next((i for i in range(max(0, table_at - 4), table_at) if lows[i] in CREATE_VERBS), None)
    as_table = table_at >= 2 and lows[table_at - 1] in ("a", "new") and lows[table_at - 2] in ("as", "into", "to")
    if verb_at is None and not as_table:
        return None
    used = {table_at}
    if verb_at is not None:
        used |= set(range(verb_at, table_at))
    name = None
    for i, w in enumerate(lows):
        if i + 1 >= len(tokens) or not (w in _NAMING or (w == "as" and lows[i + 1] not in ("a", "new", "the"))):
            continue
        start = tokens[i + 1].start
        m = _IDENTIFIER.match(text, start)
        if m is None or m.group().lower() in FILLER:
            continue
        name = m.group()
        used |= {i} | {t.index for t in tokens if start <= t.start < m.end()}
        break
    return Intent("derived", name=name, used=used)

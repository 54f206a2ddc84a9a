"""The catalog as searchable documents: one per table, column, glossary term, metric and dimension.

Turns a `Catalog` into flat text fields (split names, descriptions, synonyms, owners, tags, PII tags,
related glossary terms) and words for BM25; it never ranks anything and never reads files itself.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from bm25s.stopwords import STOPWORDS_EN_PLUS

from catalog.metadata import Catalog, Table

KINDS: tuple[str, ...] = ("table", "column", "glossary", "metric", "dimension")

# Fields in the order a match is explained: the first field holding a query word is the reason shown.
FIELDS: tuple[str, ...] = ("name", "label", "synonyms", "table", "description", "tags", "owner", "pii",
                           "glossary", "details")
# How many times a field's words go into the BM25 text: names and synonyms weigh more than prose.
_WEIGHT = {"name": 3, "label": 2, "synonyms": 2}
_WHERE = {"label": "in label", "synonyms": "in synonyms", "description": "in description", "tags": "in tags",
          "owner": "in owner", "pii": "in PII tag", "details": "in details"}

# Identifier pieces: "orderAmountUSD2" -> order, Amount, USD, 2; underscores and punctuation separate too.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_STOP = frozenset(STOPWORDS_EN_PLUS)  # NLTK's English list


def _load_stemmer() -> tuple[str | None, Callable[[str], str] | None]:
    # PyStemmer is optional: used when installed, never required.
    try:
        import Stemmer  # type: ignore[import-not-found]
    except ImportError:
        return None, None
    stem = Stemmer.Stemmer("english").stemWord
    return "pystemmer-english", stem


STEMMER_NAME, _stem = _load_stemmer()


def surface_words(text: str) -> list[str]:
    """The lower-case words of `text`, names split on `_` and camelCase, stop words dropped."""
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP]


def term(word: str) -> str:
    """The index term of one surface word (its stem when a stemmer is installed)."""
    return _stem(word) if _stem else word


def words(text: str) -> list[str]:
    """Index terms of `text`: `surface_words` passed through the stemmer, if any."""
    return [term(w) for w in surface_words(text)]


@dataclass
class SearchDocument:
    """One thing a search can find; `fields` hold its text, each a string."""
    kind: str
    name: str
    table: str | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.table}.{self.name}" if self.kind in ("column", "dimension") else f"{self.kind}:{self.name}"

    @property
    def snippet(self) -> str:
        text = self.fields.get("description") or self.fields.get("label") or ""
        text = " ".join(text.split())
        return text if len(text) <= 160 else text[:157].rstrip() + "..."

    def index_terms(self) -> list[str]:
        out: list[str] = []
        for f in FIELDS:
            text = self.fields.get(f)
            if text:
                out.extend(words(text) * _WEIGHT.get(f, 1))
        # The kind itself is a word of the document: "revenue metric", "customers table".
        out.append(term("glossary" if self.kind == "glossary" else self.kind))
        return out

    def embedding_text(self) -> str:
        parts = [f"{self.kind} {' '.join(surface_words(self.name))}"]
        parts += [self.fields[f] for f in FIELDS[1:] if self.fields.get(f)]
        return ". ".join(parts)

    def where(self, token: str) -> str | None:
        """Why `token` matched this document: the first field (in `FIELDS` order) that holds it."""
        for f in FIELDS:
            text = self.fields.get(f)
            if not text or token not in words(text):
                continue
            if f == "name":
                return f"in {self.kind} name"
            if f == "table":
                return f"in table name `{self.table}`"
            if f == "glossary":
                return f"in related glossary term {self.fields.get('glossary_terms', text)}"
            return _WHERE[f]
        return None

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "table": self.table, "fields": self.fields}

    @classmethod
    def from_json(cls, data: dict) -> "SearchDocument":
        return cls(data["kind"], data["name"], data["table"], data["fields"])


@dataclass(frozen=True)
class Expansion:
    """A glossary synonym and the term it stands for: a query saying `synonym` also asks for `term_name`."""
    synonym: str
    synonym_terms: tuple[str, ...]
    term_name: str
    term_terms: tuple[str, ...]

    def positions(self, query_terms: list[str]) -> list[int]:
        """Where the synonym's words stand in the query (every word of every occurrence)."""
        n = len(self.synonym_terms)
        starts = [i for i in range(len(query_terms) - n + 1) if tuple(query_terms[i:i + n]) == self.synonym_terms]
        return [i + j for i in starts for j in range(n)] if n else []


def expansions(catalog: Catalog) -> list[Expansion]:
    out = []
    for g in catalog.glossary.values():
        target = tuple(words(g.name))
        for syn in g.synonyms:
            syn_terms = tuple(words(syn))
            if syn_terms and target and syn_terms != target:
                out.append(Expansion(syn, syn_terms, g.name, target))
    return out


def _join(items: Iterable[str | None]) -> str:
    return ", ".join(x for x in items if x)


def _related_glossary(catalog: Catalog) -> dict[str, list[str]]:
    """Document key -> names of the glossary terms whose `related` list points at it."""
    tables = {t.lower(): t for t in catalog.tables}
    out: dict[str, list[str]] = {}
    for g in catalog.glossary.values():
        for ref in g.related:
            if ref.startswith("metric:"):
                key = f"metric:{ref.split(':', 1)[1]}"
            elif "." in ref:
                t, c = ref.split(".", 1)
                tab = catalog.tables.get(tables.get(t.lower(), t))
                col = tab.column(c) if tab else None
                key = f"column:{tab.name}.{col.name}" if tab and col else f"column:{t}.{c}"
            else:
                key = f"table:{tables.get(ref.lower(), ref)}"
            out.setdefault(key, []).append(g.name)
    return out


def _owner_text(catalog: Catalog, name: str | None) -> str:
    if not name:
        return ""
    o = catalog.owners.get(name)
    return _join([name, o.team if o else None])


def _glossary_fields(catalog: Catalog, related: dict[str, list[str]], key: str) -> dict[str, str]:
    names = related.get(key, [])
    if not names:
        return {}
    terms = [catalog.glossary[n] for n in names]
    # A document related to "revenue" is also found by the term's synonyms ("sales", "turnover").
    return {"glossary": _join(x for t in terms for x in [t.name, *t.synonyms]),
            "glossary_terms": _join(f"`{t.name}`" for t in terms)}


def _table_documents(catalog: Catalog, t: Table, related: dict[str, list[str]]) -> Iterator[SearchDocument]:
    fields = {"name": t.name, "synonyms": _join(t.synonyms), "description": t.description,
              "tags": _join(t.tags), "owner": _owner_text(catalog, t.owner),
              "pii": _join(sorted({c.pii.value.replace("_", " ") for c in t.pii_columns})),
              **_glossary_fields(catalog, related, f"table:{t.name}")}
    yield SearchDocument("table", t.name, t.name, {k: v for k, v in fields.items() if v})
    for c in t.columns:
        fields = {"name": c.name, "synonyms": _join(c.synonyms), "table": t.name, "description": c.description,
                  "tags": _join(c.tags), "pii": c.pii.value.replace("_", " ") if c.pii else "",
                  **_glossary_fields(catalog, related, f"column:{t.name}.{c.name}")}
        yield SearchDocument("column", c.name, t.name, {k: v for k, v in fields.items() if v})


def documents(catalog: Catalog) -> list[SearchDocument]:
    """Every searchable thing in the catalog, tables first, in a stable order."""
    related = _related_glossary(catalog)
    docs: list[SearchDocument] = []
    for name in sorted(catalog.tables):
        docs.extend(_table_documents(catalog, catalog.tables[name], related))
    for g in sorted(catalog.glossary.values(), key=lambda g: g.name):
        fields = {"name": g.name, "synonyms": _join(g.synonyms), "description": g.definition,
                  "owner": _owner_text(catalog, g.owner), "details": _join(g.related)}
        docs.append(SearchDocument("glossary", g.name, None, {k: v for k, v in fields.items() if v}))
    sem = catalog.semantic
    measures = {ms.name: (sm, ms) for sm in sem.semantic_models for ms in sm.measures}
    for m in sorted(sem.metrics, key=lambda m: m.name):
        measure = measures.get(m.type_params.measure.name) if m.type_params.measure else None
        table = measure[0].table if measure else None
        details = _join([f"{m.type.value} metric",
                         measure[1].name if measure else None, measure[1].description if measure else None,
                         *(x.name for x in [m.type_params.numerator, m.type_params.denominator] if x),
                         *(x.name for x in m.type_params.metrics or [])])
        fields = {"name": m.name, "label": m.label or "", "table": table or "", "description": m.description or "",
                  "details": details, **_glossary_fields(catalog, related, f"metric:{m.name}")}
        docs.append(SearchDocument("metric", m.name, table, {k: v for k, v in fields.items() if v}))
    for sm in sorted(sem.semantic_models, key=lambda s: s.name):
        for d in sm.dimensions:
            fields = {"name": d.name, "label": d.label or "", "table": sm.table, "description": d.description or "",
                      "details": _join([f"{d.type.value} dimension", sm.name, sm.description])}
            docs.append(SearchDocument("dimension", d.name, sm.table, {k: v for k, v in fields.items() if v}))
    return docs

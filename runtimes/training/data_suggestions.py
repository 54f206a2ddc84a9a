"""Training data sets the catalog suggests beyond its tables: a text table joined with the text table that answers
it (linked by a key the metadata states), keeping the best answers by their quality score — prompt = the message,
completion = its answer — as one read query built with sqlglot, for the SQL guard like any `--data` query.

It only reads (a sample of each table and the query's row count, through the guarded `run_sql`) and never decides
for the user: each suggestion is an option to approve.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from catalog.metadata import Catalog, Table
from catalog.safe_sql import run_sql
from catalog.table_links import TableLink, table_links
from core.errors import UserError
from core.workspace import Workspace

# Words that say a column scores how good a row is (in its name, synonyms, description or a glossary term).
_SCORE_WORDS = frozenset({"quality", "rating", "rated", "score", "csat", "satisfaction", "review", "reviewed",
                          "stars", "grade", "nps", "thumbs"})
# Words of a goal that asks for the best examples rather than all of them.
_BEST_WORDS = frozenset({"best", "top", "highest", "high", "quality", "rated", "reviewed", "great", "excellent",
                         "finest", "good", "score", "scored", "rating"})
SAMPLE_ROWS = 50
MIN_TEXT_CHARS = 20      # a column averaging fewer characters is a label, not a message
TOP_SHARE = 0.25         # "the best": the upper quarter of the scores (at least the column's top value)


@dataclass(frozen=True)
class JoinSuggestion:
    """Messages of `prompt_table` with the answers of `completion_table` whose `score` is at least `threshold`."""
    prompt_table: str
    prompt_column: str
    completion_table: str
    completion_column: str
    score_column: str  # of the completion table
    threshold: int | float
    link: TableLink
    sql: str
    rows: int

    @property
    def name(self) -> str:
        return f"{self.prompt_table}+{self.completion_table}"

    def describe(self) -> str:
        return (f"{self.prompt_table} joined with {self.completion_table} on {self.link.child}.{self.link.column} = "
                f"{self.link.parent}.{self.link.key}, {self.completion_table}.{self.score_column} ≥ {self.threshold} (the best "
                f"{TOP_SHARE:.0%} by score), best first: {self.rows:,} rows, prompt ← {self.prompt_table}."
                f"{self.prompt_column}, completion ← {self.completion_table}.{self.completion_column}")


def asks_for_the_best(words: set[str]) -> bool:
    return bool(words & _BEST_WORDS)


def scored_answer_joins(ws: Workspace, catalog: Catalog) -> list[JoinSuggestion]:
    """One suggestion per linked pair of text tables whose answering side has a score column; none without."""
    found: list[JoinSuggestion] = []
    texts: dict[str, str | None] = {}
    for link in table_links(catalog):
        for name in (link.parent, link.child):
            if name not in texts:
                texts[name] = _text_column(ws, catalog.tables[name])
        parent_text, child_text = texts[link.parent], texts[link.child]
        if parent_text is None or child_text is None:
            continue
        # The answer refers to what it answers (a reply names its ticket), and its own score says how good it is.
        score = _score_column(ws, catalog, catalog.tables[link.child])
        if score is None:
            continue
        try:
            found.append(_suggestion(ws, link, parent_text, child_text, score))
        except UserError:  # the guard refused it or nothing is left: not a suggestion
            continue
    return found


def _suggestion(ws: Workspace, link: TableLink, parent_text: str, child_text: str,
                score_column: str) -> JoinSuggestion:
    score = exp.column(score_column, table="c")
    threshold = _top_threshold(ws, link.child, score_column)
    query = (exp.select(exp.column(parent_text, table="p").as_("prompt"),
                        exp.column(child_text, table="c").as_("completion"))
             .from_(exp.to_table(link.parent).as_("p"))
             .join(exp.to_table(link.child).as_("c"),
                   on=exp.EQ(this=exp.column(link.column, table="c"), expression=exp.column(link.key, table="p")))
             .where(exp.and_(score >= exp.convert(threshold), exp.column(parent_text, table="p").is_(exp.null()).not_(),
                             exp.column(child_text, table="c").is_(exp.null()).not_()))
             .order_by(exp.Ordered(this=score.copy(), desc=True)))
    sql = query.sql(dialect="duckdb")
    count = exp.select(exp.func("count", exp.Star()).as_("n")).from_(query.subquery("q")).sql(dialect="duckdb")
    rows = int(run_sql(ws, count).rows[0][0])
    if rows == 0:
        raise UserError("no rows")
    return JoinSuggestion(link.parent, parent_text, link.child, child_text, score_column, threshold, link, sql, rows)


def _top_threshold(ws: Workspace, table: str, column: str) -> int | float:
    """The score at the start of the upper quarter of the table's scores (a discrete value the column holds)."""
    q = exp.select(exp.func("quantile_disc", exp.column(column), exp.Literal.number(1 - TOP_SHARE))
                   ).from_(exp.to_table(table)).sql(dialect="duckdb")
    value = run_sql(ws, q).rows[0][0]
    if value is None:
        raise UserError("no scores")
    return value  # as the column holds it: `>= 4` for whole-number scores


def _sample(ws: Workspace, table: Table) -> tuple[list[str], list[list]]:
    q = exp.select(exp.Star()).from_(exp.to_table(table.name)).limit(SAMPLE_ROWS).sql(dialect="duckdb")
    result = run_sql(ws, q)
    return list(result.columns), result.rows


_SAMPLES: dict[tuple[str, str, float], tuple[list[str], list[list]]] = {}


def _cached_sample(ws: Workspace, table: Table) -> tuple[list[str], list[list]]:
    key = (str(ws.root), table.name, ws.warehouse_path.stat().st_mtime if ws.warehouse_path.exists() else 0.0)
    if key not in _SAMPLES:
        _SAMPLES[key] = _sample(ws, table)
    return _SAMPLES[key]


def _text_column(ws: Workspace, table: Table) -> str | None:
    """The column holding the table's free text: the longest text on average in a sample, if long enough."""
    try:
        columns, rows = _cached_sample(ws, table)
    except UserError:
        return None
    best, best_len = None, float(MIN_TEXT_CHARS)
    for i, name in enumerate(columns):
        col = table.column(name)
        if col is not None and col.pii is not None:
            continue
        values = [r[i] for r in rows if isinstance(r[i], str)]
        if not values or len(values) < len([r for r in rows if r[i] is not None]):
            continue
        mean = sum(len(v) for v in values) / len(values)
        if mean >= best_len:
            best, best_len = name, mean
    return best


def _score_column(ws: Workspace, catalog: Catalog, table: Table) -> str | None:
    """A numeric column the metadata calls a quality score, rating or satisfaction (first in column order)."""
    try:
        columns, rows = _cached_sample(ws, table)
    except UserError:
        return None
    related = {}
    for term in catalog.glossary.values():
        for ref in term.related:
            related.setdefault(ref.lower(), []).append(" ".join([term.name, term.definition, *term.synonyms]))
    for i, name in enumerate(columns):
        values = [r[i] for r in rows if r[i] is not None]
        if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            continue
        col = table.column(name)
        said = [name, *(col.synonyms if col else []), col.description if col else "",
                *related.get(f"{table.name}.{name}".lower(), [])]
        if name in table.primary_key or name.lower().endswith("_id"):
            continue
        if set(_words(" ".join(said))) & _SCORE_WORDS:
            return name
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("_", " "))

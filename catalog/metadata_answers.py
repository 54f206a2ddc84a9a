"""Answers in words that come straight from the catalog's metadata: owners of tables and glossary terms,
definitions of terms and metrics, PII tags and column lineage. Read by the offline planner and, through the
read tools of `tools/catalog_answers.py`, by any planner.

It reads the loaded `Catalog` only; it never reads data rows and never shows values of PII columns.
"""
from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from catalog.column_lineage import trace_upstream
from core.errors import UserError
from catalog.metadata import Catalog
from catalog.search_documents import term
from catalog.semantic.spec import Metric
from catalog.semantic.where_filters import parse_filter
from catalog.suggestions import unknown

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def stems(text: str) -> tuple[str, ...]:
    """A phrase's word stems, as the catalog search stems them."""
    return tuple(term(w.lower()) for w in _WORD.findall(text))


def readable_filter(text: str) -> str:
    """A filter with its template calls written as plain names: `customer__region = 'EMEA'`."""
    try:
        parsed = parse_filter(text)
    except UserError:
        return text.strip()

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name in parsed.refs:
            return exp.column(parsed.refs[node.name].name)
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
            return node.this.copy()
        return node

    return parsed.tree.copy().transform(swap).sql(dialect="duckdb")


def owners_text(catalog: Catalog, table: str | None = None, term: str | None = None) -> str:
    def who(name: str | None) -> str:
        if not name:
            return "no owner is recorded"
        o = catalog.owners.get(name)
        if o is None:
            return f"owned by `{name}`"
        extra = ", ".join(x for x in (o.team, o.email) if x)
        about = o.description.strip().rstrip(".")
        return f"owned by `{o.name}`" + (f" ({extra})" if extra else "") + (f": {about}" if about else "")

    if table is not None:
        t = catalog.table(table)
        if t is None:
            return unknown("table", table, catalog.tables)
        return f"Table `{t.name}` is {who(t.owner)}."
    if term is not None:
        g = catalog.glossary[term]
        return f"The glossary term `{g.name}` is {who(g.owner)}."
    if not catalog.owners:
        return "The catalog records no owners (catalog/owners.yml is empty)."
    lines = []
    for o in catalog.owners.values():
        tables = sorted(t.name for t in catalog.tables.values() if t.owner == o.name)
        contact = ", ".join(x for x in (o.team, o.email) if x)
        lines.append(f"- `{o.name}`" + (f" ({contact})" if contact else "") + ": "
                     + (", ".join(f"`{t}`" for t in tables) or "no tables"))
    return "Owners in the catalog and the tables they own:\n" + "\n".join(lines)


def definition_text(catalog: Catalog, term: str | None, metric: str | None) -> str:
    """What a glossary term means and how its metric is computed, from the glossary and the semantic layer."""
    lines: list[str] = []
    metrics = [metric] if metric else []
    if term is not None:
        g = catalog.glossary[term]
        lines.append(f"`{g.name}`: {g.definition}" if g.definition else f"`{g.name}` has no definition in the glossary.")
        if g.synonyms:
            lines.append("Also called " + ", ".join(f"\"{x}\"" for x in g.synonyms) + ".")
        metrics += [r.split(":", 1)[1] for r in g.related if r.startswith("metric:") and r.split(":", 1)[1] not in metrics]
    elif metric is not None:  # the glossary's words for the metric, if a term is named after it
        m = catalog.semantic.metric(metric)
        own = {stems(metric), stems(m.label or "")} if m is not None else set()
        lines += [f"`{g.name}`: {g.definition}" for g in catalog.glossary.values()
                  if f"metric:{metric}" in g.related and stems(g.name) in own and g.definition][:1]
    for name in metrics:
        m = catalog.semantic.metric(name)
        if m is not None:
            lines.append(_metric_definition(catalog, m))
    return "\n".join(lines) or "I found no glossary term or metric of that name; ask \"list metrics\"."


def _metric_definition(catalog: Catalog, m: Metric) -> str:
    sem = catalog.semantic
    tp = m.type_params
    head = f"Metric `{m.name}`" + (f" ({m.label})" if m.label else "")
    head += f": {m.description.rstrip('.')}" if m.description else ""
    how = ""
    if tp.measure is not None:
        model, measure = next(((sm, ms) for sm in sem.semantic_models for ms in sm.measures if ms.name == tp.measure.name),
                              (None, None))
        if model is not None and measure is not None:
            agg = measure.agg.value if hasattr(measure.agg, "value") else str(measure.agg)
            how = f"{agg} of `{measure.expr or measure.name}` over table `{model.table}`"
            if m.type.value == "cumulative":
                c = tp.cumulative
                how += (f", accumulated over a {c.window} window" if c.window
                        else f", accumulated from the start of each {c.grain_to_date}" if c.grain_to_date
                        else ", accumulated over all time")
    elif tp.numerator is not None and tp.denominator is not None:
        how = f"`{tp.numerator.name}` divided by `{tp.denominator.name}`"
    elif tp.expr:
        inputs = [f"`{x.name}`" + (f" ({x.offset_window} earlier, as `{x.alias}`)" if x.offset_window else "")
                  for x in tp.metrics or []]
        how = f"`{tp.expr}` over " + ", ".join(inputs)
    if m.filter:
        how += ("; " if how else "") + "only where " + " and ".join(f"`{readable_filter(f)}`" for f in m.filter)
    return head + (f"; computed as {how}." if how else ".")


def pii_text(catalog: Catalog, table: str | None = None) -> str:
    tables = list(catalog.tables.values())
    if table is not None:
        t = catalog.table(table)
        if t is None:
            return unknown("table", table, catalog.tables)
        tables = [t]
    found = [(t.name, c.name, c.pii.value) for t in tables for c in t.pii_columns]
    where = f"table `{tables[0].name}`" if table is not None else "the catalog"
    if not found:
        return f"No column of {where} is tagged as PII."
    lines = [f"- `{t}.{c}` ({tag})" for t, c, tag in found]
    return (f"{len(found)} column{'s' if len(found) != 1 else ''} of {where} "
            f"{'are' if len(found) != 1 else 'is'} tagged as PII (their values are masked and never sampled):\n"
            + "\n".join(lines))


def lineage_text(catalog: Catalog, table: str | None, column: str | None) -> str:
    derived = sorted({x.table for x in catalog.lineage})
    if table is None:
        if not derived:
            return "No derived table records lineage yet: lineage is recorded when a derived table is created."
        return ("Lineage is recorded for the derived tables " + ", ".join(f"`{t}`" for t in derived)
                + ". Ask, for example, \"where does " + f"{derived[0]}.{_first_column(catalog, derived[0])}"
                + " come from?\"")
    t = catalog.table(table)
    if t is None:
        return unknown("table", table, catalog.tables)
    columns = [column] if column else [c.name for c in t.columns]
    lines: list[str] = []
    for col in columns:
        try:
            tree = trace_upstream(catalog, t.name, col)
        except UserError as e:
            return str(e)
        lines += _tree_lines(tree, 0)
    if not any(catalog.lineage_of(t.name, c) for c in columns):
        what = f"`{t.name}.{column}`" if column else f"`{t.name}`"
        text = f"{what} is source data: no lineage is recorded for it (only derived tables have lineage)."
        described = t.column(column) if column else None
        if described is not None and described.description:  # the recorded expression, when there is one
            text += f" The catalog describes it as: {described.description}"
        return text
    return f"Lineage of {'`' + t.name + '.' + column + '`' if column else 'table `' + t.name + '`'}:\n" + "\n".join(lines)


def _first_column(catalog: Catalog, table: str) -> str:
    t = catalog.table(table)
    return t.columns[-1].name if t is not None and t.columns else "column"


def _tree_lines(node: dict[str, Any], depth: int) -> list[str]:
    label = f"`{node['column']}`" + ("" if node.get("derived") else " (source data)")
    out = ["  " * depth + "- " + label + (" ← computed from:" if node.get("sources") else "")]
    for src in node.get("sources", []):
        out += _tree_lines(src, depth + 1)
    return out

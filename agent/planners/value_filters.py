"""Dimension values as they appear in the data ("EMEA", "enterprise", "mobile"), read once per session so a
question's words can be looked up in them, and the semantic-layer filters that keep those values or a
time range, written as sqlglot trees around MetricFlow's `{{ Dimension(...) }}` templates (and read back
as plain text for replies).

It reads distinct values of categorical dimensions through the sandboxed reader only, never of a column
tagged as PII, and never runs a metric query.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlglot import exp

from core.errors import UserError
from catalog.metadata import Catalog
from catalog.semantic.spec import DimensionType
from catalog.semantic.where_filters import parse_filter
from catalog.warehouse import connect_reader, fetch_with_timeout
from core.workspace import Workspace

MAX_VALUES = 500  # a dimension with more distinct values than this is not a list of categories
MAX_VALUE_LENGTH = 80
_log = logging.getLogger(__name__)


class DimensionValues:
    """Distinct values of every categorical dimension, by (model, dimension), cached until the catalog changes."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._for: Catalog | None = None  # held, not its id: a freed catalog's id can come back
        self._values: dict[tuple[str, str], list[str]] = {}

    def of(self, catalog: Catalog) -> dict[tuple[str, str], list[str]]:
        if self._for is not catalog:
            self._values = self._read(catalog)
            self._for = catalog
        return self._values

    def _read(self, catalog: Catalog) -> dict[tuple[str, str], list[str]]:
        wanted = _value_queries(catalog)
        if not wanted:
            return {}
        settings = self.workspace.settings.sql
        rows: list[tuple] = []
        read: set[int] = set()
        try:
            with connect_reader(self.workspace) as con:
                # One statement for all dimensions; if one of them cannot be read (a model over a table that is
                # gone), each is read alone and only that one is left without values.
                keyed = [exp.select(exp.Literal.number(i).as_("k"), "v").from_(q.subquery(f"d{i}"))
                         for i, (_, q) in enumerate(wanted)]
                union = keyed[0]
                for q in keyed[1:]:
                    union = exp.union(union, q, distinct=False)
                try:
                    _, rows, _ = fetch_with_timeout(con, union.sql(dialect="duckdb"), settings.timeout_s)
                    read = set(range(len(keyed)))
                except UserError:
                    raise
                except Exception as e:
                    _log.debug("dimension values read one by one: %s", e)
                    for i, q in enumerate(keyed):
                        try:
                            rows += fetch_with_timeout(con, q.sql(dialect="duckdb"), settings.timeout_s)[1]
                            read.add(i)
                        except UserError:
                            raise
                        except Exception as e:
                            _log.debug("no values for %s: %s", wanted[i][0], e)
        except UserError as e:  # a timeout, say: questions still work, without value filters
            _log.debug("dimension values not read: %s", e)
        found: dict[int, list[str]] = {}
        for k, v in rows:
            found.setdefault(k, []).append(v)
        out: dict[tuple[str, str], list[str]] = {}
        for i, (key, _) in enumerate(wanted):
            vals = found.get(i, [])
            if i in read and len(vals) <= MAX_VALUES:  # more is not a list of categories
                out[key] = sorted(v for v in vals if isinstance(v, str) and 0 < len(v) <= MAX_VALUE_LENGTH)
        return out


def _value_queries(catalog: Catalog) -> list[tuple[tuple[str, str], exp.Select]]:
    """For each categorical dimension (not over a PII column): its distinct values, one more than wanted."""
    import sqlglot

    out: list[tuple[tuple[str, str], exp.Select]] = []
    for model in catalog.semantic.semantic_models:
        table = catalog.table(model.table)
        for d in model.dimensions:
            if d.type != DimensionType.categorical:
                continue
            col = table.column(d.column_expr) if table is not None else None
            if col is not None and col.pii is not None:
                continue
            try:
                value = sqlglot.parse_one(d.column_expr, read="duckdb")
            except sqlglot.errors.ParseError:
                continue
            query = (exp.select(value.as_("v")).distinct().from_(exp.to_table(model.table))
                     .where(exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())))
                     .limit(MAX_VALUES + 1))
            out.append(((model.name, d.name), query))
    return out


def _template(text: str) -> exp.Expression:
    # MetricFlow's Jinja call is not SQL; a Var is written out verbatim where the column will go.
    return exp.Var(this=text)


def dimension_ref(name: str) -> exp.Expression:
    return _template("{{ Dimension('" + name + "') }}")


def value_filter(name: str, values: list[str], negate: bool = False) -> str:
    """`{{ Dimension('customer__region') }} = 'EMEA'` (or IN, <>, NOT IN)."""
    ref = dimension_ref(name)
    literals = [exp.Literal.string(v) for v in values]
    if len(literals) == 1:
        cond: exp.Expression = (exp.NEQ if negate else exp.EQ)(this=ref, expression=literals[0])
    else:
        cond = exp.In(this=ref, expressions=literals)
        if negate:
            cond = exp.Not(this=exp.Paren(this=cond))
    return cond.sql(dialect="duckdb")


def period_filter(grain: str, starts: list[dt.date]) -> str:
    """`metric_time` at `grain` in the given period starts: periods compared side by side, not their span."""
    ref = _template(f"{{{{ TimeDimension('metric_time', '{grain}') }}}}")
    dates = [exp.cast(exp.Literal.string(d.isoformat()), "DATE") for d in starts]
    return exp.In(this=ref, expressions=dates).sql(dialect="duckdb")


def time_filters(start: dt.date | None, end: dt.date | None) -> list[str]:
    """Filters on `metric_time` at day grain for [start, end)."""
    out = []
    day = "{{ TimeDimension('metric_time', 'day') }}"
    if start is not None:
        out.append(exp.GTE(this=_template(day), expression=exp.cast(exp.Literal.string(start.isoformat()), "DATE"))
                   .sql(dialect="duckdb"))
    if end is not None:
        out.append(exp.LT(this=_template(day), expression=exp.cast(exp.Literal.string(end.isoformat()), "DATE"))
                   .sql(dialect="duckdb"))
    return out

"""`where` and metric `filter` text of MetricFlow: Jinja templates (`{{ Dimension('customer__region') }}`,
`{{ TimeDimension('metric_time', 'month') }}`, `{{ Entity('listing') }}`) around plain SQL.

Templates render to placeholder columns, the SQL is parsed by sqlglot, and each placeholder is later
replaced in the tree by the resolved column; the text is never pasted into SQL as a string.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment
from sqlglot import exp

from core.errors import UserError
from catalog.semantic.expr_guard import MAX_TEXT
from catalog.semantic.model_exprs import grouped, sql_expression
from catalog.semantic.names import ElementRef, parse_name

_PLACEHOLDER = "__lathe_ref_{}__"


class _Ref:
    """What a template call renders to: a placeholder column, refined by `.grain()` / `.date_part()`."""

    def __init__(self, refs: dict[str, "_Ref"], ref: ElementRef):
        self.ref = ref
        self.placeholder = _PLACEHOLDER.format(len(refs))
        refs[self.placeholder] = self

    def grain(self, time_granularity: str) -> "_Ref":
        self.ref = self.ref.with_time(grain=time_granularity)
        return self

    def date_part(self, date_part_name: str) -> "_Ref":
        self.ref = self.ref.with_time(date_part=date_part_name)
        return self

    def descending(self, _: bool = True) -> "_Ref":
        return self

    def __str__(self) -> str:
        return self.placeholder


def _template_functions(refs: dict[str, _Ref]) -> dict[str, Callable[..., Any]]:
    def dimension(name: str, entity_path: list[str] | None = None) -> _Ref:
        return _Ref(refs, parse_name(name, entity_path or ()))

    def time_dimension(time_dimension_name: str, time_granularity_name: str | None = None,
                       entity_path: list[str] | None = None, descending: bool | None = None,
                       date_part_name: str | None = None) -> _Ref:
        ref = parse_name(time_dimension_name, entity_path or ())
        return _Ref(refs, ref.with_time(grain=time_granularity_name, date_part=date_part_name))

    def entity(entity_name: str, entity_path: list[str] | None = None) -> _Ref:
        return _Ref(refs, parse_name(entity_name, entity_path or ()))

    def metric(metric_name: str, group_by: list[str] | None = None) -> _Ref:
        raise UserError(f"`Metric('{metric_name}', ...)` in a filter is not supported yet: filter on dimensions, "
                        "or query the metric grouped by the entity and filter its rows")

    return {"Dimension": dimension, "TimeDimension": time_dimension, "Entity": entity, "Metric": metric}


_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
_FUNCTIONS = ("Dimension", "TimeDimension", "Entity", "Metric")


@dataclass(frozen=True)
class ParsedFilter:
    text: str
    tree: exp.Expression
    refs: dict[str, ElementRef]

    @property
    def only_metric_time(self) -> bool:
        return bool(self.refs) and all(r.is_metric_time for r in self.refs.values())

    def bind(self, column: Callable[[ElementRef], exp.Expression]) -> exp.Expression:
        """The filter with every reference replaced by `column(ref)`."""
        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table and node.name in self.refs:
                return grouped(column(self.refs[node.name]))
            return node

        return self.tree.copy().transform(swap)


def parse_filter(text: str, where: str = "filter") -> ParsedFilter:
    """Render and parse one filter; `where` says whose filter it is (a metric, the query) in errors."""
    try:
        return _parse_filter(str(text))
    except UserError as e:
        raise UserError(f"{where} `{str(text).strip()}`: {e}") from None


# A template is text and calls: `{{ Dimension('a__b') }}`, `.grain('month')`, literal arguments. No statement
# (`{% for %}`, `{% set %}`), operator or attribute of Python objects, so rendering is short and bounded.
_TEMPLATE_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Call, nodes.Name, nodes.Const,
                   nodes.List, nodes.Tuple, nodes.Keyword, nodes.Getattr)
_TEMPLATE_METHODS = {"grain", "date_part", "descending"}


def _check_template(text: str) -> None:
    if len(text) > MAX_TEXT:
        raise UserError(f"{len(text)} characters is too long for one filter (at most {MAX_TEXT})")
    if "{" not in text:
        return
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as e:
        raise UserError(f"cannot read the template (line {e.lineno}): {e.message}") from None
    for node in tree.find_all(nodes.Node):
        bad = None
        if not isinstance(node, _TEMPLATE_NODES):
            bad = f"`{type(node).__name__.lower()}`"
        elif isinstance(node, nodes.Name) and node.name not in _FUNCTIONS:
            bad = f"the name `{node.name}`"
        elif isinstance(node, nodes.Getattr) and node.attr not in _TEMPLATE_METHODS:
            bad = f"`.{node.attr}`"
        elif isinstance(node, nodes.Call) and (node.dyn_args or node.dyn_kwargs):
            bad = "`*args`"
        if bad:
            raise UserError(f"cannot render the template: {bad} is not allowed in it; write only calls such as "
                            "{{ Dimension('customer__region') }} or {{ TimeDimension('metric_time', 'month') }} "
                            "with literal arguments")


@lru_cache(maxsize=2048)
def _parse_filter(text: str) -> ParsedFilter:
    refs: dict[str, _Ref] = {}
    _check_template(text)
    try:
        rendered = _ENV.from_string(text).render(**_template_functions(refs))
    except jinja2.TemplateError as e:
        raise UserError(f"cannot render the template: {e.message}; use Dimension('entity__name'), "
                        "TimeDimension('metric_time', 'month') or Entity('name')") from None
    except TypeError as e:
        raise UserError(f"cannot render the template: {e}") from None
    try:
        tree = sql_expression(rendered)
    except UserError as e:
        raise UserError(f"not a SQL condition ({e}): write one boolean expression such as "
                        "`{{ Dimension('customer__region') }} = 'EMEA'`") from None
    found = {k: v.ref for k, v in refs.items()}
    # Plain names (`customer__region = 'EMEA'`) are read as dimension names too, so a person need not
    # write the template; they are resolved, or refused, like any other name.
    for col in tree.find_all(exp.Column):  # no sub-query: the guard refused them
        if col.table:
            raise UserError(f"`{col.sql('duckdb')}` is not a dimension name: write `entity__name`, "
                            "such as `customer__region`")
        if col.name not in found:
            if col.this.args.get("quoted"):
                raise UserError(f"`\"{col.name}\"` is a quoted name, not text: write text in single quotes "
                                f"('{col.name}')")
            found[col.name] = parse_name(col.name)
    return ParsedFilter(text, tree, found)

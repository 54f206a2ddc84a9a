"""Metrics taken apart into the measures they aggregate: simple and cumulative metrics are leaves, ratio and
derived metrics are expressions over their inputs, with filters and time offsets passed down to each leaf.

Decides what is aggregated under which conditions; which table, join and SQL shape is the compiler's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from core.errors import UserError
from catalog.semantic.model_exprs import grouped, sql_expression
from catalog.semantic.spec import AggregationType, Measure, MeasureInput, Metric, MetricType, SemanticManifest
from catalog.semantic.time_grains import check_grain, parse_window
from catalog.suggestions import unknown


@dataclass(frozen=True)
class Offset:
    """A derived metric's input read at another time: `window` back (`1 month`) or at the start of `to_grain`."""
    window: tuple[int, str] | None = None
    to_grain: str | None = None


@dataclass(frozen=True)
class Cumulative:
    window: tuple[int, str] | None
    grain_to_date: str | None
    period_agg: str


@dataclass(frozen=True)
class NonAdditive:
    dimension: str
    choice: str
    groupings: tuple[str, ...]


@dataclass(frozen=True)
class Leaf:
    """One measure aggregated under one set of conditions. Leaves with equal `group` share one aggregation."""
    model: str
    measure: str
    agg_time_dimension: str | None
    filters: tuple[str, ...]
    cumulative: Cumulative | None = None
    offsets: tuple[Offset, ...] = ()  # outermost first
    join_to_timespine: bool = False
    non_additive: NonAdditive | None = None
    path: tuple[str, ...] = field(default=(), compare=False)  # the metrics that led to it, for error messages

    @property
    def metric(self) -> str:
        return self.path[0] if self.path else self.measure

    @property
    def who(self) -> str:
        """`metric `a`` or `metric `a` (through `b`)`: who asks, in error messages."""
        inner = f" (through `{self.path[-1]}`)" if len(self.path) > 1 else ""
        return f"metric `{self.metric}`{inner}"

    @property
    def group(self) -> tuple:
        return (self.model, self.agg_time_dimension, tuple(sorted(set(self.filters))), self.cumulative,
                self.offsets, self.join_to_timespine, self.non_additive)

    @property
    def transforms_time(self) -> bool:
        return self.cumulative is not None or bool(self.offsets) or self.join_to_timespine


LEAF_PREFIX = "__lathe_leaf_"


class MetricPlanner:
    """Turns metric names into value expressions whose leaf placeholders name `Leaf`s in `self.leaves`."""

    def __init__(self, manifest: SemanticManifest):
        self.manifest = manifest
        self.metrics = {m.name: m for m in manifest.metrics}
        self.measures: dict[str, tuple[str, Measure]] = {}
        for sm in manifest.semantic_models:
            for ms in sm.measures:
                self.measures.setdefault(ms.name, (sm.name, ms))
        self.leaves: dict[str, Leaf] = {}
        self._ids: dict[Leaf, str] = {}

    def metric(self, name: str, asked_by: str | None = None) -> Metric:
        m = self.metrics.get(name)
        if m is None:
            msg = unknown("metric", name, self.metrics)
            raise UserError(f"metric `{asked_by}` uses {msg[3:]}" if asked_by else msg)
        return m

    def value(self, name: str, filters: tuple[str, ...] = (), offsets: tuple[Offset, ...] = (),
              stack: tuple[str, ...] = ()) -> exp.Expression:
        if name in stack:
            raise UserError(f"metric `{name}` refers to itself through {' -> '.join(stack + (name,))}")
        m = self.metric(name, stack[-1] if stack else None)
        stack = stack + (name,)
        filters = filters + tuple(m.filter or ())
        tp = m.type_params
        if m.type == MetricType.conversion:
            raise UserError(f"metric `{name}` is a conversion metric; conversion metrics are not supported yet")
        if m.type in (MetricType.simple, MetricType.cumulative):
            cumulative = None
            if m.type == MetricType.cumulative:
                c = tp.cumulative
                if c.window and c.grain_to_date:
                    raise UserError(f"cumulative metric `{name}` sets both window and grain_to_date; keep one")
                cumulative = Cumulative(parse_window(c.window, f"metric `{name}` window") if c.window else None,
                                        check_grain(c.grain_to_date) if c.grain_to_date else None, c.period_agg)
            return self._leaf_value(m, tp.measure, filters, offsets, cumulative, stack)
        if m.type == MetricType.ratio:
            num = self._input_value(m, tp.numerator, filters, offsets, stack)
            den = self._input_value(m, tp.denominator, filters, offsets, stack)
            return exp.Div(this=exp.cast(num, "DOUBLE"),
                           expression=exp.cast(exp.Nullif(this=den, expression=exp.Literal.number(0)), "DOUBLE"))
        # derived: its expression over the inputs, each named by its alias or its name
        inputs: dict[str, exp.Expression] = {}
        for inp in tp.metrics or []:
            key = (inp.alias or inp.name).lower()
            if key in inputs:
                raise UserError(f"derived metric `{name}` has two inputs called `{key}`; give one an `alias`")
            inputs[key] = self._input_value(m, inp, filters, offsets, stack)
        try:
            tree = sql_expression(str(tp.expr))
        except UserError as e:
            raise UserError(f"derived metric `{name}`: `expr: {tp.expr}` is not a SQL expression ({e})") from None
        for col in tree.find_all(exp.Column):
            if col.table or col.name.lower() not in inputs:
                raise UserError(f"derived metric `{name}`: `expr` uses `{col.sql()}`, which is not one of its "
                                f"inputs ({', '.join(f'`{k}`' for k in inputs)})")

        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column):
                return grouped(inputs[node.name.lower()].copy())
            return node

        return tree.transform(swap)

    def _input_value(self, parent: Metric, inp, filters, offsets, stack) -> exp.Expression:
        extra: tuple[Offset, ...] = ()
        if inp.offset_window and inp.offset_to_grain:
            raise UserError(f"metric `{parent.name}`: input `{inp.name}` sets both offset_window and offset_to_grain")
        if inp.offset_window:
            extra = (Offset(window=parse_window(inp.offset_window, f"metric `{parent.name}` offset_window")),)
        elif inp.offset_to_grain:
            extra = (Offset(to_grain=check_grain(inp.offset_to_grain)),)
        return self.value(inp.name, filters + tuple(inp.filter or ()), offsets + extra, stack)

    def _leaf_value(self, m: Metric, mi: MeasureInput, filters, offsets, cumulative, stack) -> exp.Expression:
        found = self.measures.get(mi.name)
        if found is None:
            raise UserError(f"metric `{m.name}`: " + unknown("measure", mi.name, self.measures))
        model_name, ms = found
        model = self.manifest.model(model_name)
        nad = None
        if ms.non_additive_dimension:
            n = ms.non_additive_dimension
            nad = NonAdditive(n.name, n.window_choice, tuple(n.window_groupings))
            if cumulative or offsets:
                raise UserError(f"metric `{m.name}`: measure `{ms.name}` is semi-additive (non_additive_dimension); "
                                "semi-additive measures in cumulative or offset metrics are not supported yet")
        if ms.agg == AggregationType.percentile and (ms.agg_params is None or ms.agg_params.percentile is None):
            raise UserError(f"measure `{ms.name}` (semantic model `{model_name}`): agg percentile needs "
                            "`agg_params: {percentile: 0.9}`")
        leaf = Leaf(model_name, ms.name, ms.agg_time_dimension or model.default_agg_time_dimension,
                    filters + tuple(mi.filter or ()), cumulative, offsets, mi.join_to_timespine, nad, stack)
        ref = exp.column(self._id(leaf))
        if mi.fill_nulls_with is not None:
            return exp.Coalesce(this=ref, expressions=[exp.Literal.number(mi.fill_nulls_with)])
        return ref

    def _id(self, leaf: Leaf) -> str:
        if leaf not in self._ids:
            self._ids[leaf] = f"{LEAF_PREFIX}{len(self._ids)}"
            self.leaves[self._ids[leaf]] = leaf
        return self._ids[leaf]

"""The semantic-layer compiler: a `MetricQuery` over a MetricFlow manifest becomes one DuckDB query (a sqlglot
tree). Measures are aggregated at their own model's grain, combined on the group-by columns with full outer
joins, and put on a time spine for windows and offsets; a simple query stays one flat aggregate. Never runs SQL.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlglot import exp

from core.errors import UserError
from catalog.semantic.join_graph import JoinGraph, JoinSet, Resolved
from catalog.semantic.metric_plan import LEAF_PREFIX, Leaf, MetricPlanner, Offset
from catalog.semantic.model_exprs import model_column
from catalog.semantic.names import METRIC_TIME, ElementRef, parse_name
from catalog.semantic.query import CompiledQuery, MetricQuery
from catalog.semantic.spec import AggregationType, Measure, SemanticManifest
from catalog.semantic.time_grains import coarser_or_same, extract, grain_rank, interval, trunc
from catalog.semantic.where_filters import ParsedFilter, parse_filter
from catalog.suggestions import unknown

_T, _S = "__t", "__s"  # a transformed group's time column, and the time spine's
# Aggregations whose partial results combine (a cumulative sum of daily sums); the others are recomputed
# from rows.
_REAGGREGATE = {AggregationType.sum: exp.Sum, AggregationType.count: exp.Sum, AggregationType.sum_boolean: exp.Sum,
                AggregationType.min: exp.Min, AggregationType.max: exp.Max}


@dataclass(frozen=True)
class TimeSpineTable:
    """A warehouse table of dates (MetricFlow's `metricflow_time_spine`) to use instead of `range()`."""
    table: str
    column: str
    grain: str = "day"


def compile_query(manifest: SemanticManifest, query: MetricQuery,
                  time_spine: TimeSpineTable | None = None) -> CompiledQuery:
    """Compile `query` to DuckDB SQL. Raises `UserError` for unknown names and unsupported features."""
    return _Compiler(manifest.with_measure_metrics(), query, time_spine).compile()


def dimensions_for(manifest: SemanticManifest, metrics: list[str]) -> list[str]:
    """The group-by names every one of `metrics` can be grouped by (without grains), `metric_time` first when
    they all have one: what a person or an agent may ask for."""
    manifest = manifest.with_measure_metrics()
    planner, graph = MetricPlanner(manifest), JoinGraph(manifest)
    for m in metrics:
        planner.value(m)
    common: list[str] | None = None
    for leaf in planner.leaves.values():
        names = ([METRIC_TIME] if leaf.agg_time_dimension else []) + graph.names(leaf.model)
        common = names if common is None else [n for n in common if n in set(names)]
    return common or []


def aggregate(ms: Measure, e: exp.Expression) -> exp.Expression:
    """A measure's aggregation of `e`, as MetricFlow defines each `agg`."""
    a = ms.agg
    if a == AggregationType.sum:
        return exp.Sum(this=e)
    if a == AggregationType.count:
        return exp.Count(this=e)
    if a == AggregationType.count_distinct:
        return exp.Count(this=exp.Distinct(expressions=[e]))
    if a == AggregationType.average:
        return exp.Avg(this=e)
    if a == AggregationType.min:
        return exp.Min(this=e)
    if a == AggregationType.max:
        return exp.Max(this=e)
    if a == AggregationType.sum_boolean:  # a NULL flag counts as false: rows with none sum to 0, not NULL
        return exp.Sum(this=exp.Case(ifs=[exp.If(this=e, true=exp.Literal.number(1))], default=exp.Literal.number(0)))
    if a == AggregationType.median:
        return exp.PercentileCont(this=e, expression=exp.Literal.number(0.5))
    p = ms.agg_params
    q = exp.Literal.number(p.percentile)
    if p.use_approximate_percentile and not p.use_discrete_percentile:
        return exp.ApproxQuantile(this=e, quantile=q)
    # An approximate discrete percentile is computed exactly: DuckDB has no approximate discrete one.
    return (exp.PercentileDisc if p.use_discrete_percentile else exp.PercentileCont)(this=e, expression=q)


def filtered_aggregate(ms: Measure, e: exp.Expression, cond: exp.Expression | None) -> exp.Expression:
    """`aggregate`, over only the rows where `cond` holds. A count over no such rows is NULL, not 0, as it would
    be had those rows been aggregated on their own and joined on."""
    agg = aggregate(ms, e)
    if cond is None:
        return agg
    out = exp.Filter(this=agg, expression=exp.Where(this=cond))
    if ms.agg in (AggregationType.count, AggregationType.count_distinct):
        seen = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=cond.copy()))
        out = exp.Case(ifs=[exp.If(this=exp.GT(this=seen, expression=exp.Literal.number(0)), true=out)])
    return out


@dataclass
class _Group:
    """Leaves aggregated together, and the CTE (or flat select) that holds them."""
    name: str
    leaves: dict[str, Leaf] = field(default_factory=dict)  # leaf id -> leaf
    columns: dict[str, str] = field(default_factory=dict)  # leaf id -> column in the group's relation
    common: tuple[str, ...] = ()  # filters every leaf has: the scan's WHERE
    residual: dict[str, tuple[str, ...]] = field(default_factory=dict)  # a leaf's other filters: FILTER (WHERE)

    @property
    def first(self) -> Leaf:
        return next(iter(self.leaves.values()))


@dataclass
class _Scan:
    """A group's rows: the model's table with its joins, filtered, with key and measure expressions."""
    table: exp.Expression
    joins: list[exp.Join]
    keys: list[tuple[str, exp.Expression]]
    where: list[exp.Expression]
    measures: list[tuple[str, Measure, exp.Expression, exp.Expression | None]]  # column, measure, expr, FILTER

    def select(self, projections: list[exp.Expression], group: bool) -> exp.Select:
        sel = exp.select(*projections).from_(self.table)
        if self.joins:
            sel.set("joins", [j.copy() for j in self.joins])
        if self.where:
            sel = sel.where(exp.and_(*[w.copy() for w in self.where]))
        if group and self.keys:
            sel = sel.group_by(*[e.copy() for _, e in self.keys])
        return sel

    def aggregates(self) -> list[exp.Expression]:
        return [filtered_aggregate(ms, e.copy(), cond) for _, ms, e, cond in self.measures]

    def aggregated(self) -> exp.Select:
        return self.select([exp.alias_(e.copy(), n) for n, e in self.keys]
                           + [exp.alias_(a, c) for a, (c, *_) in zip(self.aggregates(), self.measures)], group=True)

    def rows(self) -> exp.Select:
        return self.select([exp.alias_(e.copy(), n) for n, e in self.keys]
                           + [exp.alias_(e.copy(), c) for c, _, e, _ in self.measures], group=False)


class _Compiler:
    def __init__(self, manifest: SemanticManifest, query: MetricQuery, time_spine: TimeSpineTable | None):
        self.manifest, self.query, self.time_spine = manifest, query, time_spine
        self.graph = JoinGraph(manifest)
        self.planner = MetricPlanner(manifest)
        self.ctes: list[tuple[str, exp.Select]] = []

    # ---- the query as a whole -----------------------------------------------------------------
    def compile(self) -> CompiledQuery:
        q = self.query
        if len(set(q.metrics)) != len(q.metrics):
            raise UserError(f"metric `{_first_duplicate(q.metrics)}` is asked for twice")
        values = {m: self.planner.value(m) for m in q.metrics}
        self.items = [self._group_by_item(g) for g in q.group_by]
        names = [r.name for r in self.items] + list(q.metrics)
        if len({n.lower() for n in names}) != len(names):
            raise UserError(f"`{_first_duplicate([n.lower() for n in names])}` is asked for twice in the metrics and "
                            "group-by; each output column needs its own name")
        self.items = [self._default_grain(r) for r in self.items]
        self.filters = [parse_filter(w, "where") for w in q.where]

        # Plain aggregations of one model share one scan, whatever their filters (each aggregate keeps its
        # own rows with FILTER); time-moving ones need their own.
        groups: dict[tuple, _Group] = {}
        for leaf_id, leaf in self.planner.leaves.items():
            plain = not self._transformed(leaf) and leaf.non_additive is None
            key = ("plain", leaf.model, leaf.agg_time_dimension) if plain else leaf.group
            g = groups.setdefault(key, _Group(f"n{len(groups)}"))
            g.leaves[leaf_id] = leaf
        for g in groups.values():
            sets = [list(dict.fromkeys(leaf.filters)) for leaf in g.leaves.values()]
            g.common = tuple(f for f in sets[0] if all(f in other for other in sets[1:]))
            g.residual = {i: tuple(f for f in fs if f not in g.common) for i, fs in zip(g.leaves, sets)}
            taken = {n.lower() for n in names} | {_T, _S}
            for leaf_id, leaf in g.leaves.items():
                col, n = leaf.measure, 1
                while col.lower() in taken:
                    n += 1
                    col = f"{leaf.measure}_{n}"
                taken.add(col.lower())
                g.columns[leaf_id] = col

        group_list = list(groups.values())
        if len(group_list) == 1 and self._is_flat(group_list[0]):
            tree = self._flat(group_list[0], values)
        else:
            tree = self._combined(group_list, values)
        tree = self._ordered(tree, names)
        return CompiledQuery(tree=tree, columns=names)

    def _group_by_item(self, text: str) -> ElementRef:
        if "(" in text:  # MetricFlow's saved-query spelling: TimeDimension('metric_time', 'month')
            pf = parse_filter("{{ " + text + " }}", "group-by")
            if len(pf.refs) != 1 or not isinstance(pf.tree, exp.Column):
                raise UserError(f"group-by `{text}`: write one Dimension(...), TimeDimension(...) or Entity(...)")
            ref = next(iter(pf.refs.values()))
            return replace(ref, name=ref.qualified)
        return parse_name(text)

    def _default_grain(self, ref: ElementRef) -> ElementRef:
        """`metric_time` with no grain: the metrics' `time_granularity`, else the coarsest grain of their time
        dimensions, so that every metric can be shown at it."""
        if not ref.is_metric_time or ref.grain or ref.date_part:
            return ref
        grains = []
        for leaf in self.planner.leaves.values():
            res = self.graph.resolve(leaf.model, ref, leaf.agg_time_dimension, f"{leaf.who}")
            grains.append(res.base_grain)
        for m in self.query.metrics:
            tg = self.planner.metrics[m].time_granularity
            if tg:
                grains.append(tg.lower())
        grain = max(grains, key=grain_rank) if grains else "day"
        return ElementRef(ref.name, METRIC_TIME, (), grain, None)

    def _is_flat(self, g: _Group) -> bool:
        leaf = g.first
        return not self._transformed(leaf) and leaf.non_additive is None

    def _transformed(self, leaf: Leaf) -> bool:
        if leaf.offsets:
            return True
        c = leaf.cumulative
        if c is not None and (c.window or c.grain_to_date):
            return True
        # All-time cumulative with no metric_time to spread it over is the plain total; a time spine
        # to fill needs metric_time at a grain.
        if c is not None:
            return any(r.is_metric_time for r in self.items)
        return leaf.join_to_timespine and any(r.is_metric_time and not r.date_part for r in self.items)

    def _flat(self, g: _Group, values: dict[str, exp.Expression]) -> exp.Select:
        scan = self._scan(g, [(r.name, r) for r in self.items], self._pre_filters(g, transformed=False))
        aggs = dict(zip(g.leaves, scan.aggregates()))
        projections = [exp.alias_(e.copy(), n) for n, e in scan.keys]
        projections += [exp.alias_(_substitute(v, lambda i: aggs[i].copy()), m) for m, v in values.items()]
        return scan.select(projections, group=True)

    def _combined(self, groups: list[_Group], values: dict[str, exp.Expression]) -> exp.Select:
        leaf_cols: dict[str, exp.Expression] = {}
        for g in groups:
            self.ctes.append((g.name, self._group_relation(g)))
            for leaf_id, col in g.columns.items():
                leaf_cols[leaf_id] = exp.column(col, table=g.name)
        keys = [r.name for r in self.items]
        sel = exp.select(*[exp.alias_(self._coalesced(k, groups), k) for k in keys],
                         *[exp.alias_(_substitute(v, lambda i: leaf_cols[i].copy()), m) for m, v in values.items()])
        sel = sel.from_(exp.to_table(groups[0].name))
        joins = []
        for i, g in enumerate(groups[1:], start=1):
            if keys:
                on = exp.and_(*[exp.NullSafeEQ(this=self._coalesced(k, groups[:i]),
                                               expression=exp.column(k, table=g.name)) for k in keys])
                joins.append(exp.Join(this=exp.to_table(g.name), side="FULL", kind="OUTER", on=on))
            else:
                joins.append(exp.Join(this=exp.to_table(g.name), kind="CROSS"))
        if joins:
            sel.set("joins", joins)
        for name, cte in self.ctes:
            sel = sel.with_(name, as_=cte)
        return sel

    @staticmethod
    def _coalesced(key: str, groups: list[_Group]) -> exp.Expression:
        cols = [exp.column(key, table=g.name) for g in groups]
        return cols[0] if len(cols) == 1 else exp.Coalesce(this=cols[0], expressions=cols[1:])

    def _ordered(self, sel: exp.Select, names: list[str]) -> exp.Select:
        q = self.query
        order: list[exp.Ordered] = []
        if q.order_by:
            low = {n.lower(): i for i, n in enumerate(names)}
            for o in q.order_by:
                desc = o.startswith("-")
                name = o[1:].strip() if desc else o
                if name.lower() not in low:
                    raise UserError("order-by: " + unknown("column", name, names)
                                    + " (order by a metric or group-by of the query; `-name` for descending)")
                order.append(exp.Ordered(this=exp.Literal.number(low[name.lower()] + 1), desc=desc))
        else:  # a stable, readable order by default: the group-by columns
            order = [exp.Ordered(this=exp.Literal.number(i + 1)) for i in range(len(self.items))]
        if order:
            sel = sel.order_by(*order)
        if q.limit is not None:
            sel = sel.limit(q.limit)
        return sel

    # ---- one group of measures ------------------------------------------------------------------
    def _pre_filters(self, g: _Group, transformed: bool) -> list[ParsedFilter]:
        """Filters applied to rows before aggregation. A query filter on metric_time alone is applied after
        a cumulative window or offset instead, so the window still sees earlier rows."""
        leaf = g.first
        out = [parse_filter(f, f"filter of {leaf.who}") for f in g.common]
        after = transformed and (leaf.cumulative is not None or bool(leaf.offsets))
        out += [f for f in self.filters if not (after and f.only_metric_time)]
        return out

    def _post_filters(self) -> list[ParsedFilter]:
        return [f for f in self.filters if f.only_metric_time]

    def _resolve(self, leaf: Leaf, ref: ElementRef) -> Resolved:
        return self.graph.resolve(leaf.model, ref, leaf.agg_time_dimension, f"{leaf.who}")

    def _time_column(self, leaf: Leaf) -> exp.Expression | None:
        """The leaf's own time column (for joins to versioned tables); None when its model has none."""
        dim = next((d for d in self.graph.models[leaf.model].dimensions if d.name == leaf.agg_time_dimension), None)
        if dim is None:
            return None
        return model_column(dim.column_expr, leaf.model, f"semantic model `{leaf.model}`, `{dim.name}`")

    def _ref_expr(self, js: JoinSet, leaf: Leaf, ref: ElementRef) -> exp.Expression:
        res = self._resolve(leaf, ref)
        col = js.column(res)
        if res.kind != "time_dimension":
            return col
        if ref.date_part:
            return extract(ref.date_part, col)
        return trunc(ref.grain or res.base_grain, col)

    def _scan(self, g: _Group, items: list[tuple[str, ElementRef]], filters: list[ParsedFilter]) -> _Scan:
        leaf = g.first
        model = self.graph.models[leaf.model]
        js = JoinSet(self.graph, model.name, model.name, self._time_column(leaf))
        keys = [(name, self._ref_expr(js, leaf, ref)) for name, ref in items]
        where = [f.bind(lambda ref: self._ref_expr(js, leaf, ref)) for f in filters]
        measures = []
        only: list[exp.Expression] = []
        for leaf_id, lf in g.leaves.items():
            ms = next(m for m in model.measures if m.name == lf.measure)
            e = model_column(ms.column_expr, model.name, f"semantic model `{model.name}`, measure `{ms.name}`")
            own = [parse_filter(f, f"filter of {lf.who}").bind(lambda ref, lf=lf: self._ref_expr(js, lf, ref))
                   for f in g.residual.get(leaf_id, ())]
            cond = exp.and_(*own) if own else None
            if cond is not None:
                only.append(cond)
            measures.append((g.columns[leaf_id], ms, e, cond))
        if only and len(only) == len(measures):  # no aggregate reads every row: skip rows none of them reads
            where.append(exp.or_(*[c.copy() for c in only]) if len(only) > 1 else only[0].copy())
        table = exp.to_table(model.table).as_(model.name)
        return _Scan(table, list(js.joins), keys, where, measures)

    def _group_relation(self, g: _Group) -> exp.Select:
        leaf = g.first
        if self._transformed(leaf):
            return self._time_transformed(g)
        items = [(r.name, r) for r in self.items]
        scan = self._scan(g, items, self._pre_filters(g, transformed=False))
        if leaf.non_additive is None:
            return scan.aggregated()
        return self._semi_additive(g, scan)

    def _semi_additive(self, g: _Group, scan: _Scan) -> exp.Select:
        """Measures that add up only at one point of a dimension (balances): keep the rows at the first or last
        value of that dimension per metric_time period and per `window_groupings`, then aggregate."""
        leaf = g.first
        nad = leaf.non_additive
        model = self.graph.models[leaf.model]
        dim = next((d for d in model.dimensions if d.name == nad.dimension), None)
        if dim is None:
            raise UserError(f"measure `{leaf.measure}`: non_additive_dimension `{nad.dimension}` is not a dimension "
                            f"of semantic model `{model.name}`")
        js = JoinSet(self.graph, model.name, model.name, self._time_column(leaf))
        # the dimension at its own grain, as MetricFlow compares it: every row of the first month of a monthly one
        where = f"semantic model `{model.name}`, `{dim.name}`"
        col = trunc(dim.grain, model_column(dim.column_expr, model.name, where))
        partition = [trunc(r.grain, col.copy()) for r in self.items if r.is_metric_time and r.grain]
        for e in nad.groupings:
            res = self._resolve(leaf, ElementRef(e, e))
            if res.reach.hops or res.kind != "entity":
                raise UserError(f"measure `{leaf.measure}`: window_groupings `{e}` must be an entity of semantic "
                                f"model `{model.name}`")
            partition.append(js.column(res))
        edge = (exp.Min if nad.choice == "min" else exp.Max)(this=col.copy())
        window = exp.Window(this=edge, partition_by=partition) if partition else exp.Window(this=edge)
        rows_name = f"{g.name}_rows"
        rows_name = self._add(rows_name, scan.rows().qualify(exp.EQ(this=col, expression=window)))
        cols = [exp.column(n, table=rows_name) for n, _ in scan.keys]
        sel = exp.select(*[exp.alias_(c, n) for c, (n, _) in zip(cols, scan.keys)],
                         *[exp.alias_(aggregate(ms, exp.column(c, table=rows_name)), c)
                           for c, ms, _, _ in scan.measures])
        sel = sel.from_(exp.to_table(rows_name))
        return sel.group_by(*[c.copy() for c in cols]) if cols else sel

    def _time_transformed(self, g: _Group) -> exp.Select:
        """Cumulative windows, offsets and `join_to_timespine`: the group's values per period on a time spine."""
        leaf = g.first
        mt = [r for r in self.items if r.is_metric_time]
        truncs = [r.grain for r in mt if not r.date_part]
        what = ("is cumulative" if leaf.cumulative else "reads an earlier period (offset)" if leaf.offsets
                else "is joined to the time spine")
        if not truncs:
            raise UserError(f"{leaf.who} {what}: group by metric_time at a grain, such as "
                            "`metric_time__day` or `metric_time__month`")
        grain = min(truncs, key=grain_rank)
        base = self._resolve(leaf, ElementRef(METRIC_TIME, METRIC_TIME)).base_grain
        if not coarser_or_same(grain, base):
            raise UserError(f"{leaf.who}: `metric_time__{grain}` is finer than the `{base}` grain of its "
                            "time dimension")
        # An offset that does not move period starts onto period starts (14 days at a month grain) moves
        # each row instead, before aggregating: exact for every aggregation.
        shift_rows = any(o.window and not _offset_fits(o.window, grain) for o in leaf.offsets)
        if shift_rows and (leaf.cumulative or leaf.join_to_timespine or any(o.to_grain for o in leaf.offsets)):
            raise UserError(f"{leaf.who}: an offset_window that is not a whole number of "
                            f"`{grain}` periods, on a cumulative, time-spine or offset_to_grain input, is not "
                            f"supported yet; group by a finer metric_time grain")
        if grain != base and any(o.to_grain for o in leaf.offsets):
            # MetricFlow reads the value of the period's first `base` period (its first day), not the period's
            raise UserError(f"{leaf.who}: an offset_to_grain at `metric_time__{grain}`, coarser than the metric's "
                            f"`{base}` grain, is not supported yet; group by `metric_time__{base}`")
        others = [(r.name, r) for r in self.items if not r.is_metric_time]
        stage_grain = base if leaf.cumulative or shift_rows else grain
        items = [(_T, ElementRef(_T, METRIC_TIME, (), stage_grain))] + others
        scan = self._scan(g, items, self._pre_filters(g, transformed=True))
        other_names = [n for n, _ in others]
        cols = [c for c, *_ in scan.measures]

        rows = f"{g.name}_rows"
        reagg: dict = {}  # how a cumulative window combines the rows' values
        if shift_rows:
            prev = self._add(rows, self._shifted(g, leaf, scan, grain, base))
        elif leaf.cumulative and not all(ms.agg in _REAGGREGATE for _, ms, _, _ in scan.measures):
            prev = self._add(rows, scan.rows())
            reagg = {c: (lambda e, ms=ms: aggregate(ms, e)) for c, ms, _, _ in scan.measures}
        else:
            prev = self._add(rows, scan.aggregated())
            reagg = {c: (lambda e, ms=ms: _REAGGREGATE[ms.agg](this=e)) for c, ms, _, _ in scan.measures}

        if leaf.cumulative:
            c = leaf.cumulative
            spine = self._spine(prev, base, f"{g.name}_spine")
            r, s = (lambda n: exp.column(n, table=prev)), exp.column(_S, table=spine)
            cond = [exp.LTE(this=r(_T), expression=s.copy())]
            if c.window:
                cond.append(exp.GT(this=r(_T), expression=exp.Sub(this=s.copy(), expression=interval(*c.window))))
            elif c.grain_to_date:
                cond.append(exp.GTE(this=r(_T), expression=trunc(c.grain_to_date, s.copy())))
            sel = exp.select(exp.alias_(s.copy(), _T), *[exp.alias_(r(n), n) for n in other_names],
                             *[exp.alias_(reagg[col](r(col)), col) for col in cols])
            sel = sel.from_(exp.to_table(spine)).join(exp.to_table(prev), on=exp.and_(*cond), join_type="INNER")
            sel = sel.group_by(s.copy(), *[r(n) for n in other_names])
            prev = self._add(f"{g.name}_cumulative", sel)
            if grain != base:  # a coarser grain: one value per period, as `period_agg` says
                t = exp.column(_T, table=prev)
                pick = {"first": lambda v: exp.ArgMin(this=v, expression=t.copy()),
                        "last": lambda v: exp.ArgMax(this=v, expression=t.copy()),
                        "average": lambda v: exp.Avg(this=v)}[c.period_agg]
                sel = exp.select(exp.alias_(trunc(grain, t.copy()), _T),
                                 *[exp.alias_(exp.column(n, table=prev), n) for n in other_names],
                                 *[exp.alias_(pick(exp.column(col, table=prev)), col) for col in cols])
                sel = sel.from_(exp.to_table(prev)).group_by(trunc(grain, t.copy()),
                                                             *[exp.column(n, table=prev) for n in other_names])
                prev = self._add(f"{g.name}_periods", sel)

        if leaf.join_to_timespine:
            prev = self._spine_join(prev, grain, f"{g.name}_filled", other_names, cols, None)
        if leaf.offsets and not shift_rows:
            prev = self._spine_join(prev, grain, f"{g.name}_offset", other_names, cols, leaf.offsets)

        t = exp.column(_T, table=prev)
        sel = exp.select(*[exp.alias_(extract(r.date_part, t.copy()) if r.date_part else
                                      (t.copy() if r.grain == grain else trunc(r.grain, t.copy())), r.name)
                           if r.is_metric_time else exp.alias_(exp.column(r.name, table=prev), r.name)
                           for r in self.items],
                         *[exp.column(col, table=prev) for col in cols]).from_(exp.to_table(prev))
        post = self._post_filters()
        if post and shift_rows:  # otherwise the time spine carried them
            sel = sel.where(exp.and_(*[f.bind(lambda ref: _time_of(ref, t, grain)) for f in post]))
        if leaf.join_to_timespine:
            # A filter on group-by columns holds for the filled periods too (MetricFlow filters again after
            # the spine join): a period filled with a NULL group is not in the group the filter asks for.
            again = [w for w in (self._on_group_by(leaf, f, prev) for f in self.filters) if w is not None]
            if again:
                sel = sel.where(exp.and_(*again))
        return sel

    def _on_group_by(self, leaf: Leaf, f: ParsedFilter, rel: str) -> exp.Expression | None:
        """`f` over `rel`'s group-by columns, when every name it reads is a (non-time) group-by of the query."""
        def key(ref: ElementRef) -> tuple:
            res = self._resolve(leaf, ref)
            return res.reach.hops, res.reach.model, res.expr_text, ref.grain, ref.date_part

        items = {key(r): r.name for r in self.items if not r.is_metric_time}
        try:
            names = {ph: items.get(key(ref)) for ph, ref in f.refs.items()}
        except UserError:
            return None
        if not names or any(n is None for n in names.values()) or any(r.is_metric_time for r in f.refs.values()):
            return None
        by_ref = {key(ref): names[ph] for ph, ref in f.refs.items()}
        return f.bind(lambda ref: exp.column(by_ref[key(ref)], table=rel))

    def _shifted(self, g: _Group, leaf: Leaf, scan: _Scan, grain: str, base: str) -> exp.Select:
        """Rows moved forward by the offsets, then aggregated at `grain`; rows moved past the data's last
        time are dropped, as a time spine over the data's own range would."""
        moved = scan.keys[0][1]  # the row's time at its own grain
        for o in leaf.offsets:
            moved = exp.Add(this=moved, expression=interval(*o.window))
        model = self.graph.models[leaf.model]
        ts = self.time_spine
        if ts and coarser_or_same(base, ts.grain):  # the spine's last day, as MetricFlow's spine join keeps
            last = exp.select(exp.Max(this=trunc(base, exp.column(ts.column, table="bounds"))))
            last = last.from_(exp.to_table(ts.table).as_("bounds")).subquery()
        else:
            time = self._resolve(leaf, ElementRef(METRIC_TIME, METRIC_TIME))
            own = model_column(time.expr_text, "bounds", f"model `{model.name}`")
            last = exp.select(exp.Max(this=trunc(base, own)))
            last = last.from_(exp.to_table(model.table).as_("bounds")).subquery()
        scan.keys[0] = (_T, trunc(grain, moved.copy()))
        scan.where = scan.where + [exp.LTE(this=moved, expression=last)]
        return scan.aggregated()

    def _add(self, name: str, sel: exp.Select) -> str:
        """Add a CTE; one that would repeat an earlier one exactly (two windows over the same daily sums)
        is not added again, and the earlier one's name is returned."""
        text = sel.sql(dialect="duckdb")
        for have, other in self.ctes:
            if other.sql(dialect="duckdb") == text:
                return have
        self.ctes.append((name, sel))
        return name

    def _spine(self, prev: str, grain: str, name: str) -> str:
        """Every period of `grain` between the first and last of `prev`'s own times."""
        t = exp.column(_T, table=prev)
        ts = self.time_spine
        if ts and coarser_or_same(grain, ts.grain):
            # The whole table, as MetricFlow reads it: a window or an offset carries values past the last
            # row, and a filled metric covers every period of the spine.
            col = exp.column(ts.column, table="time_spine")
            sel = (exp.select(exp.alias_(trunc(grain, col.copy()), _S))
                   .from_(exp.to_table(ts.table).as_("time_spine"))
                   .group_by(trunc(grain, col.copy())))
        else:
            series = exp.func("generate_series", exp.Min(this=t.copy()), exp.Max(this=t.copy()), interval(1, grain),
                              dialect="duckdb")
            sel = exp.select(exp.alias_(exp.Unnest(expressions=[series]), _S)).from_(exp.to_table(prev))
        post = self._post_filters()
        if post:  # a query filter on metric_time alone keeps or drops whole spine periods
            sel = exp.select(exp.column(_S, table="spine")).from_(sel.subquery("spine"))
            s = exp.column(_S, table="spine")
            sel = sel.where(exp.and_(*[f.bind(lambda ref: _time_of(ref, s, grain)) for f in post]))
        return self._add(name, sel)

    def _spine_join(self, prev: str, grain: str, name: str, others: list[str], cols: list[str],
                    offsets: tuple[Offset, ...] | None) -> str:
        """`prev` on a time spine: every period kept (LEFT) when filling, or read at `offsets` (INNER)."""
        spine = self._spine(prev, grain, f"{name}_spine")
        s = exp.column(_S, table=spine)
        target: exp.Expression = s.copy()
        for o in offsets or ():  # outermost first: the input's value at t is the inner value at f(t)
            target = (exp.Sub(this=target, expression=interval(*o.window)) if o.window else trunc(o.to_grain, target))
        on = exp.EQ(this=exp.column(_T, table=prev), expression=target)
        sel = exp.select(exp.alias_(s.copy(), _T), *[exp.alias_(exp.column(n, table=prev), n) for n in others],
                         *[exp.alias_(exp.column(c, table=prev), c) for c in cols])
        sel = sel.from_(exp.to_table(spine)).join(exp.to_table(prev), on=on,
                                                   join_type="LEFT" if offsets is None else "INNER")
        return self._add(name, sel)


def _time_of(ref: ElementRef, t: exp.Expression, grain: str) -> exp.Expression:
    if ref.date_part:
        return extract(ref.date_part, t.copy())
    if ref.grain and grain_rank(ref.grain) > grain_rank(grain):
        return trunc(ref.grain, t.copy())
    return t.copy()


_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def _offset_fits(window: tuple[int, str], grain: str) -> bool:
    """Whether moving back by `window` takes the start of every `grain` period to the start of another."""
    n, unit = window
    if grain_rank(grain) <= grain_rank("day"):
        return coarser_or_same(unit, grain)
    if grain == "week":
        return unit == "week" or (unit == "day" and n % 7 == 0)
    return unit in _MONTHS and (n * _MONTHS[unit]) % _MONTHS[grain] == 0


def _substitute(value: exp.Expression, column: Callable[[str], exp.Expression]) -> exp.Expression:
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name.startswith(LEAF_PREFIX):
            return column(node.name)
        return node

    return value.copy().transform(swap)


def _first_duplicate(items: list[str]) -> str:
    seen: set[str] = set()
    for x in items:
        if x in seen:
            return x
        seen.add(x)
    return items[0]

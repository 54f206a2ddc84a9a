"""The entity graph of a semantic manifest: where a requested dimension or entity lives, and the joins from a
measure's model that reach it. A join only goes to a model where the entity is primary, unique or natural,
never to one where it is foreign (that would fan rows out and double-count); it never aggregates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlglot import exp

from core.errors import UserError
from catalog.semantic.model_exprs import model_column
from catalog.semantic.names import METRIC_TIME, SEPARATOR, ElementRef
from catalog.semantic.spec import Dimension, DimensionType, Entity, EntityType, SemanticManifest, SemanticModel
from catalog.semantic.time_grains import coarser_or_same
from catalog.suggestions import unknown

MAX_HOPS = 3
_FOUND = "__lathe_found"  # marks the rows a join found, where its key cannot
_JOINABLE = (EntityType.primary, EntityType.unique, EntityType.natural)

Kind = Literal["dimension", "time_dimension", "entity"]


@dataclass(frozen=True)
class Reach:
    """A model reached from a measure's model: the entity links that name it and the joins that get there."""
    links: tuple[str, ...]
    hops: tuple[tuple[str, str], ...]  # (entity, model) per join; empty for the measure's own model
    model: str


@dataclass(frozen=True)
class Resolved:
    """A requested name bound to one column of one model, through a definite chain of joins."""
    ref: ElementRef
    reach: Reach
    kind: Kind
    expr_text: str
    base_grain: str | None = None  # a time dimension's own grain
    dimension: str | None = None  # the time dimension's name, for metric_time and time filters

    @property
    def full_name(self) -> str:
        return SEPARATOR.join((*self.reach.links, self.ref.element))


class JoinGraph:
    def __init__(self, manifest: SemanticManifest):
        self.manifest = manifest
        self.models: dict[str, SemanticModel] = {m.name: m for m in manifest.semantic_models}
        self.joinable: dict[str, list[str]] = {}
        for m in manifest.semantic_models:
            for e in m.entities:
                if e.type in _JOINABLE:
                    self.joinable.setdefault(e.name, []).append(m.name)
        self._reach_cache: dict[str, list[Reach]] = {}

    # ---- the graph ------------------------------------------------------------------------
    def entity(self, model: str, name: str) -> Entity | None:
        return next((e for e in self.models[model].entities if e.name == name), None)

    def self_names(self, model: str) -> set[str]:
        """Entities that name the model's own rows: its local dimensions are `<entity>__<dim>`."""
        m = self.models[model]
        names = {e.name for e in m.entities if e.type in _JOINABLE}
        if m.primary_entity:
            names.add(m.primary_entity)
        return names

    def reaches(self, source: str) -> list[Reach]:
        if source not in self._reach_cache:
            out = [Reach((e,), (), source) for e in sorted(self.self_names(source))]

            def walk(model: str, links: tuple[str, ...], hops: tuple[tuple[str, str], ...], seen: set[str]) -> None:
                if len(hops) >= MAX_HOPS:
                    return
                for e in self.models[model].entities:
                    for target in self.joinable.get(e.name, []):
                        if target in seen:
                            continue
                        r = Reach(links + (e.name,), hops + ((e.name, target),), target)
                        out.append(r)
                        walk(target, r.links, r.hops, seen | {target})

            walk(source, (), (), {source})
            # The model's own entity may lead a joined path too: `customer__country__region` from customers.
            out += [Reach((e,) + r.links, r.hops, r.model)
                    for e in sorted(self.self_names(source)) for r in list(out) if r.hops]
            self._reach_cache[source] = out
        return self._reach_cache[source]

    def elements(self, reach: Reach) -> list[tuple[str, Kind, Dimension | Entity]]:
        m = self.models[reach.model]
        out: list[tuple[str, Kind, Dimension | Entity]] = [
            (d.name, "time_dimension" if d.type == DimensionType.time else "dimension", d) for d in m.dimensions]
        out += [(e.name, "entity", e) for e in m.entities if not reach.links or e.name != reach.links[-1]]
        return out

    def names(self, source: str) -> list[str]:
        """Every group-by name reachable from a model (without grains), for listings and suggestions."""
        out = [e.name for e in self.models[source].entities]
        for r in self.reaches(source):
            out += [SEPARATOR.join((*r.links, n)) for n, _, _ in self.elements(r)]
        return list(dict.fromkeys(out))

    # ---- resolution -----------------------------------------------------------------------
    def resolve(self, source: str, ref: ElementRef, agg_time_dimension: str | None = None,
                context: str = "") -> Resolved:
        """Bind `ref` for a measure of model `source`; `context` says which metric asks, for errors."""
        where = f" for {context}" if context else ""
        if ref.is_metric_time:
            if not agg_time_dimension:
                raise UserError(f"`{ref.name}`{where}: semantic model `{source}` has no agg_time_dimension "
                                "(set `defaults: agg_time_dimension:` on the model or on the measure)")
            dim = next((d for d in self.models[source].dimensions if d.name == agg_time_dimension), None)
            if dim is None or dim.type != DimensionType.time:
                raise UserError(f"semantic model `{source}`: agg_time_dimension `{agg_time_dimension}` is not one "
                                "of its time dimensions")
            return self._checked(Resolved(ref, Reach((), (), source), "time_dimension", dim.column_expr,
                                          dim.grain, dim.name), where)
        if not ref.entity_path:
            e = self.entity(source, ref.element)
            if e is not None:
                return self._checked(Resolved(ref, Reach((), (), source), "entity", e.column_expr), where)
        found = self._matches(source, ref, exact=True) or self._matches(source, ref, exact=False)
        if not found:
            known = [METRIC_TIME, *self.names(source)]
            raise UserError((f"{context}: " if context else "") + unknown("dimension", ref.qualified, known))
        fewest = min(len(r.reach.hops) for r in found)
        best = sorted((r for r in found if len(r.reach.hops) == fewest), key=lambda r: len(r.reach.links))
        # Names that take the same joins to the same column are one answer, not an ambiguity.
        paths: dict[tuple, Resolved] = {}
        for r in best:
            paths.setdefault((r.reach.hops, r.reach.model, r.expr_text), r)
        if len(paths) > 1:
            options = ", ".join(sorted(f"`{r.full_name}` (model `{r.reach.model}`)" for r in paths.values()))
            raise UserError(f"`{ref.name}`{where} is ambiguous: it could be {options}; write the full name")
        return self._checked(best[0], where)

    def _matches(self, source: str, ref: ElementRef, exact: bool) -> list[Resolved]:
        n = len(ref.entity_path)
        out = []
        for r in self.reaches(source):
            if exact and r.links != ref.entity_path:
                continue
            if not exact and (len(r.links) <= n or (n and r.links[-n:] != ref.entity_path)):
                continue
            for name, kind, obj in self.elements(r):
                if name == ref.element:
                    grain = obj.grain if isinstance(obj, Dimension) and kind == "time_dimension" else None
                    out.append(Resolved(ref, r, kind, obj.column_expr, grain, obj.name if grain else None))
        return out

    def _checked(self, res: Resolved, where: str) -> Resolved:
        ref = res.ref
        if (ref.grain or ref.date_part) and res.kind != "time_dimension":
            raise UserError(f"`{ref.name}`{where}: `{res.full_name}` is not a time dimension, so it takes no "
                            "grain or date part")
        if ref.grain and res.base_grain and not coarser_or_same(ref.grain, res.base_grain):
            raise UserError(f"`{ref.name}`{where}: `{ref.grain}` is finer than the `{res.base_grain}` grain of "
                            f"time dimension `{res.dimension}` (model `{res.reach.model}`)")
        return res


def validity_window(model: SemanticModel) -> tuple[Dimension | None, Dimension | None]:
    """The start and end dimensions of a slowly changing dimension table (`validity_params`), if it has them."""
    start = end = None
    for d in model.dimensions:
        vp = (d.type_params.validity_params or {}) if d.type_params else {}
        if vp.get("is_start"):
            start = d
        if vp.get("is_end"):
            end = d
    return start, end


@dataclass
class JoinSet:
    """The joins one measure query needs, each made once, with readable aliases (`customer`, `order__customer`).

    A join to a slowly changing dimension table (a natural entity with a validity window) takes the version
    valid at the measure's time, `time`, so that its several versions never fan rows out."""
    graph: JoinGraph
    source: str
    source_alias: str
    time: exp.Expression | None = None
    aliases: dict[tuple[tuple[str, str], ...], str] = field(default_factory=dict)
    joins: list[exp.Join] = field(default_factory=list)
    found: dict[tuple[tuple[str, str], ...], exp.Expression] = field(default_factory=dict)  # NULL: no row

    def __post_init__(self) -> None:
        self._taken = {self.source_alias}

    def alias_for(self, reach: Reach) -> str:
        """Add the joins `reach` needs (once each) and return the alias of its model."""
        alias, model = self.source_alias, self.source
        for i in range(len(reach.hops)):
            prefix = reach.hops[: i + 1]
            entity, target = prefix[-1]
            if prefix not in self.aliases:
                name = SEPARATOR.join(e for e, _ in prefix)
                if name in self._taken:
                    name = f"{name}{SEPARATOR}{target}"
                self._taken.add(name)
                self.aliases[prefix] = name
                left = self.graph.entity(model, entity)
                right = self.graph.entity(target, entity)
                key = model_column(right.column_expr, name, f"semantic model `{target}`, entity `{entity}`")
                on = exp.EQ(this=model_column(left.column_expr, alias, f"semantic model `{model}`, entity `{entity}`"),
                            expression=key)
                if right.type == EntityType.natural:
                    on = exp.and_(on, *self._valid_at(target, name))
                same = self._same_partition(target, name)
                if same and len(prefix) > 1:
                    raise UserError(f"semantic model `{target}` is partitioned (is_partition) like `{self.source}` and "
                                    "is two joins away; joining partitioned models across several joins is not "
                                    "supported yet")
                on = exp.and_(on, *same)
                table: exp.Expression = exp.to_table(self.graph.models[target].table)
                if isinstance(key, exp.Column):  # a plain key column is NULL exactly where no row was found
                    self.found[prefix] = key.copy()
                    table = table.as_(name)
                else:  # a computed key (coalesce) may not be: mark found rows
                    table = exp.select(exp.Star(), exp.alias_(exp.true(), _FOUND)).from_(table).subquery(name)
                    self.found[prefix] = exp.column(_FOUND, table=name)
                self.joins.append(exp.Join(this=table, side="LEFT", on=on))
            alias, model = self.aliases[prefix], target
        return alias

    def _same_partition(self, target: str, target_alias: str) -> list[exp.Expression]:
        """Partition dimensions (`is_partition`) of one name in the measure's model and a joined one are joined
        on, as MetricFlow does: a row joins the other model's row of its own partition (the day's snapshot)."""
        model, alias = self.source, self.source_alias
        mine = {d.name: d for d in self.graph.models[model].dimensions if d.is_partition}
        return [exp.EQ(this=model_column(mine[d.name].column_expr, alias, f"semantic model `{model}`, `{d.name}`"),
                       expression=model_column(d.column_expr, target_alias, f"semantic model `{target}`, `{d.name}`"))
                for d in self.graph.models[target].dimensions if d.is_partition and d.name in mine]

    def _valid_at(self, target: str, alias: str) -> list[exp.Expression]:
        start, end = validity_window(self.graph.models[target])
        if start is None and end is None:
            return []
        if self.time is None:
            raise UserError(f"semantic model `{target}` keeps versions over time (validity_params); joining it needs "
                            f"a time on semantic model `{self.source}` (an agg_time_dimension)")
        out: list[exp.Expression] = []
        where = f"semantic model `{target}`"
        if start is not None:
            out.append(exp.GTE(this=self.time.copy(), expression=model_column(start.column_expr, alias, where)))
        if end is not None:
            e = model_column(end.column_expr, alias, where)
            out.append(exp.Paren(this=exp.or_(exp.LT(this=self.time.copy(), expression=e),
                                              exp.Is(this=e.copy(), expression=exp.Null()))))
        return out

    def column(self, res: Resolved) -> exp.Expression:
        """The resolved element's column, read from the alias of its model (joining it in when needed).

        A joined model's element is NULL where the join found no row, whatever its expression (`1`, a CASE,
        a COALESCE), as if it were computed inside the joined model: MetricFlow's meaning."""
        alias = self.alias_for(res.reach)
        e = model_column(res.expr_text, alias, f"semantic model `{res.reach.model}`, `{res.ref.element}`")
        if not res.reach.hops or isinstance(e, exp.Column):
            return e
        hops = res.reach.hops
        found = [exp.Not(this=exp.Is(this=self.found[hops[: i + 1]].copy(), expression=exp.Null()))
                 for i in range(len(hops))]
        return exp.Case(ifs=[exp.If(this=exp.and_(*found), true=e)])

"""Which group-by and filter names a set of metrics can use, keyed by what they land on: a categorical
dimension of a semantic model, or an entity; each by its shortest name (`customer__region`, not
`order__customer__region`), as the semantic layer's own join graph reaches it.

It reads the semantic manifest only; it never compiles or runs a query.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import UserError
from catalog.semantic.compiler import dimensions_for
from catalog.semantic.metric_plan import MetricPlanner
from catalog.semantic.names import METRIC_TIME, SEPARATOR
from catalog.semantic.spec import DimensionType, EntityType, SemanticManifest

_JOINABLE = (EntityType.primary, EntityType.unique, EntityType.natural)


@dataclass(frozen=True)
class Reachable:
    """What the metrics can be grouped or filtered by."""
    dimensions: dict[tuple[str, str], str]  # (model, dimension) -> shortest name
    entities: dict[str, str]  # entity -> its name for grouping
    own_models: frozenset[str]  # the models the metrics' measures live in
    has_time: bool

    def all_names(self) -> list[str]:
        return sorted({*self.dimensions.values(), *self.entities.values()})


class SemanticNames:
    def __init__(self, manifest: SemanticManifest):
        self.manifest = manifest
        self._measured = manifest.with_measure_metrics()
        self.models = {m.name: m for m in manifest.semantic_models}
        self.primary: dict[str, str] = {}  # entity -> the model where it is primary (or unique, natural)
        for m in manifest.semantic_models:
            for e in m.entities:
                if e.type in _JOINABLE:
                    self.primary.setdefault(e.name, m.name)
            if m.primary_entity:  # a model without a key column still names what one row is
                self.primary.setdefault(m.primary_entity, m.name)
        self._cache: dict[tuple[str, ...], Reachable] = {}

    def metric_models(self, metric: str) -> set[str]:
        planner = MetricPlanner(self._measured)
        planner.value(metric)
        return {leaf.model for leaf in planner.leaves.values()}

    def reachable(self, metrics: list[str]) -> Reachable:
        key = tuple(sorted(set(metrics)))
        if key not in self._cache:
            self._cache[key] = self._reachable(list(key))
        return self._cache[key]

    def _reachable(self, metrics: list[str]) -> Reachable:
        names = dimensions_for(self.manifest, metrics)
        dims: dict[tuple[str, str], str] = {}
        entities: dict[str, str] = {}
        for name in names:
            parts = name.split(SEPARATOR)
            if name == METRIC_TIME:
                continue
            if len(parts) == 1:
                entities.setdefault(parts[0], name)
                continue
            entity, element = parts[-2], parts[-1]
            model = self._model_with_dimension(entity, element)
            if model is None:
                continue
            k = (model, element)
            if k not in dims or (len(parts), name) < (len(dims[k].split(SEPARATOR)), dims[k]):
                dims[k] = name
        own: set[str] = set()
        for m in metrics:
            own |= self.metric_models(m)
        return Reachable(dims, entities, frozenset(own), METRIC_TIME in names)

    def _model_with_dimension(self, entity: str, element: str) -> str | None:
        model = self.primary.get(entity)
        if model is None:
            return None
        dim = next((d for d in self.models[model].dimensions if d.name == element), None)
        return model if dim is not None and dim.type == DimensionType.categorical else None

    def group_name_for_entity(self, reach: Reachable, entity: str) -> str | None:
        """How to group by an entity: by a name-like dimension of its own model (`product__product_name`),
        else by the entity itself (its key)."""
        model = self.primary.get(entity)
        if model is not None:
            for d in self.models[model].dimensions:
                if d.type == DimensionType.categorical and "name" in d.name.lower().split("_"):
                    name = reach.dimensions.get((model, d.name))
                    if name:
                        return name
        return reach.entities.get(entity)

    def entity_model(self, entity: str) -> str | None:
        return self.primary.get(entity)


def safe_reachable(names: SemanticNames, metrics: list[str]) -> Reachable | None:
    """`reachable`, or None when the metrics cannot be queried together (no common dimension)."""
    try:
        return names.reachable(metrics)
    except UserError:
        return None

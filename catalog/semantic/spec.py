"""Pydantic models of MetricFlow's YAML: `semantic_models:` and `metrics:`, as dbt projects write them.

Field names and defaults follow dbt-semantic-interfaces so that an existing project loads unchanged;
this module only describes and validates, it never builds SQL.
"""
from __future__ import annotations

import re
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Spec(BaseModel):
    # Unknown keys (config, meta, label, ...) are kept, not rejected: real projects carry many.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


def _lower(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _sql_text(v: Any) -> Any:
    # YAML reads `expr: 1` as a number; MetricFlow treats every expr as SQL text.
    return str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, (int, float)) else v


class EntityType(str, Enum):
    primary = "primary"
    unique = "unique"
    foreign = "foreign"
    natural = "natural"


class DimensionType(str, Enum):
    categorical = "categorical"
    time = "time"


class AggregationType(str, Enum):
    sum = "sum"
    min = "min"
    max = "max"
    count_distinct = "count_distinct"
    sum_boolean = "sum_boolean"
    average = "average"
    percentile = "percentile"
    median = "median"
    count = "count"


class MetricType(str, Enum):
    simple = "simple"
    ratio = "ratio"
    cumulative = "cumulative"
    derived = "derived"
    conversion = "conversion"


GRAINS = ("nanosecond", "microsecond", "millisecond", "second", "minute", "hour",
          "day", "week", "month", "quarter", "year")
DATE_PARTS = ("year", "quarter", "month", "week", "day", "dow", "doy")


class Entity(_Spec):
    name: str
    type: EntityType
    expr: str | None = None
    description: str | None = None
    role: str | None = None

    _t = field_validator("type", mode="before")(_lower)
    _e = field_validator("expr", mode="before")(_sql_text)

    @property
    def column_expr(self) -> str:
        return self.expr or self.name


class TimeTypeParams(_Spec):
    time_granularity: str = "day"
    validity_params: dict[str, Any] | None = None

    _g = field_validator("time_granularity", mode="before")(_lower)


class Dimension(_Spec):
    name: str
    type: DimensionType
    expr: str | None = None
    description: str | None = None
    is_partition: bool = False
    type_params: TimeTypeParams | None = None
    label: str | None = None

    _t = field_validator("type", mode="before")(_lower)
    _e = field_validator("expr", mode="before")(_sql_text)

    @property
    def column_expr(self) -> str:
        return self.expr or self.name

    @property
    def grain(self) -> str:
        return self.type_params.time_granularity if self.type_params else "day"


class NonAdditiveDimension(_Spec):
    name: str
    window_choice: Literal["min", "max"] = "min"
    window_groupings: list[str] = Field(default_factory=list)

    _w = field_validator("window_choice", mode="before")(_lower)


class AggParams(_Spec):
    percentile: float | None = None
    use_discrete_percentile: bool = False
    use_approximate_percentile: bool = False


class Measure(_Spec):
    name: str
    agg: AggregationType
    expr: str | None = None
    description: str | None = None
    create_metric: bool = False
    agg_params: AggParams | None = None
    agg_time_dimension: str | None = None
    non_additive_dimension: NonAdditiveDimension | None = None
    label: str | None = None

    _a = field_validator("agg", mode="before")(_lower)
    _e = field_validator("expr", mode="before")(_sql_text)

    @property
    def column_expr(self) -> str:
        # MetricFlow: a measure without expr aggregates the column of its own name.
        return self.expr if self.expr is not None else self.name


class Defaults(_Spec):
    agg_time_dimension: str | None = None


_REF = re.compile(r"""^\s*ref\(\s*['"]([^'"]+)['"](?:\s*,\s*['"]([^'"]+)['"])?\s*\)\s*$""")


class NodeRelation(_Spec):
    alias: str
    schema_name: str | None = None
    database: str | None = None
    relation_name: str | None = None


class SemanticModel(_Spec):
    name: str
    # dbt projects say `model: ref('x')`; MetricFlow's own manifests say `node_relation: {alias: x}`.
    model: str | None = None
    node_relation: NodeRelation | None = None
    description: str | None = None
    defaults: Defaults | None = None
    primary_entity: str | None = None
    entities: list[Entity] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)
    dimensions: list[Dimension] = Field(default_factory=list)
    label: str | None = None

    @property
    def table(self) -> str:
        """The warehouse table behind `model:`: `ref('x')` is table `x`; a plain name is taken as is."""
        if self.model is None:
            return self.node_relation.alias if self.node_relation else self.name
        m = _REF.match(self.model)
        if m:
            return m.group(2) or m.group(1)
        return self.model.strip()

    @model_validator(mode="after")
    def _needs_relation(self) -> "SemanticModel":
        if self.model is None and self.node_relation is None:
            raise ValueError(f"semantic model `{self.name}` needs `model: ref('table')`")
        return self

    @property
    def default_agg_time_dimension(self) -> str | None:
        return self.defaults.agg_time_dimension if self.defaults else None


class MetricInput(_Spec):
    """A metric used inside a ratio or derived metric."""
    name: str
    filter: list[str] | None = None
    alias: str | None = None
    offset_window: str | None = None
    offset_to_grain: str | None = None

    _f = field_validator("filter", mode="before")(lambda v: [v] if isinstance(v, str) else v)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v


class MeasureInput(_Spec):
    name: str
    filter: list[str] | None = None
    alias: str | None = None
    join_to_timespine: bool = False
    fill_nulls_with: int | float | None = None

    _f = field_validator("filter", mode="before")(lambda v: [v] if isinstance(v, str) else v)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v


class CumulativeTypeParams(_Spec):
    window: str | None = None
    grain_to_date: str | None = None
    period_agg: Literal["first", "last", "average"] = "first"

    _p = field_validator("period_agg", "grain_to_date", mode="before")(_lower)


class MetricTypeParams(_Spec):
    measure: MeasureInput | None = None
    numerator: MetricInput | None = None
    denominator: MetricInput | None = None
    expr: str | None = None
    metrics: list[MetricInput] | None = None
    # Older projects put window and grain_to_date directly in type_params.
    window: str | None = None
    grain_to_date: str | None = None
    cumulative_type_params: CumulativeTypeParams | None = None
    conversion_type_params: dict[str, Any] | None = None

    @property
    def cumulative(self) -> CumulativeTypeParams:
        c = self.cumulative_type_params or CumulativeTypeParams()
        return CumulativeTypeParams(window=c.window or self.window,
                                    grain_to_date=c.grain_to_date or (self.grain_to_date.lower() if self.grain_to_date else None),
                                    period_agg=c.period_agg)


class Metric(_Spec):
    name: str
    type: MetricType
    type_params: MetricTypeParams = Field(default_factory=MetricTypeParams)
    description: str | None = None
    label: str | None = None
    filter: list[str] | None = None
    time_granularity: str | None = None

    _t = field_validator("type", mode="before")(_lower)
    _f = field_validator("filter", mode="before")(lambda v: [v] if isinstance(v, str) else v)

    @property
    def unit(self) -> str | None:
        """What its figures are in: `config.meta.unit` (dbt's place) or `meta.unit` ("USD", "percent", "hours"),
        else the label's last words in parentheses ("Resolution time (hours)")."""
        extra = self.model_extra or {}
        meta = (extra.get("config") or {}).get("meta") or extra.get("meta") or {}
        if isinstance(meta, dict) and meta.get("unit"):
            return str(meta["unit"])
        found = re.search(r"\(([^()]+)\)\s*$", self.label or "")
        return found.group(1) if found else None

    @model_validator(mode="after")
    def _check_params(self) -> "Metric":
        tp = self.type_params
        need = {
            MetricType.simple: ("measure",),
            MetricType.cumulative: ("measure",),
            MetricType.ratio: ("numerator", "denominator"),
            MetricType.derived: ("expr", "metrics"),
        }.get(self.type, ())
        missing = [k for k in need if getattr(tp, k) is None]
        if missing:
            raise ValueError(f"metric `{self.name}` of type {self.type.value} needs type_params.{', type_params.'.join(missing)}")
        return self


class SemanticManifest(_Spec):
    """Every semantic model and metric of a workspace (or of one imported project)."""
    semantic_models: list[SemanticModel] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)

    def model(self, name: str) -> SemanticModel | None:
        return next((m for m in self.semantic_models if m.name == name), None)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def with_measure_metrics(self) -> "SemanticManifest":
        """Add the simple metrics that `create_metric: true` measures imply, as MetricFlow does."""
        have = {m.name for m in self.metrics}
        extra = [
            Metric(name=ms.name, type=MetricType.simple, description=ms.description,
                   type_params=MetricTypeParams(measure=MeasureInput(name=ms.name)))
            for sm in self.semantic_models for ms in sm.measures
            if ms.create_metric and ms.name not in have
        ]
        return self.model_copy(update={"metrics": self.metrics + extra}) if extra else self

    def merged(self, other: "SemanticManifest") -> "SemanticManifest":
        """Other's definitions replace this one's of the same name (re-import updates)."""
        models = {m.name: m for m in self.semantic_models} | {m.name: m for m in other.semantic_models}
        metrics = {m.name: m for m in self.metrics} | {m.name: m for m in other.metrics}
        return SemanticManifest(semantic_models=list(models.values()), metrics=list(metrics.values()))

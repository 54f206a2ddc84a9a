"""Data quality of captured requests: constraints suggested from a baseline (each column's type, completeness,
range and, for few values, its domain), then a window checked against them, as SageMaker Model Monitor's
data-quality job does (its `constraints.json` fields and violation names).

Pure: DataFrames in, constraints and violations out; storing the constraints is the caller's.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import validate_input

ValueType = Literal["integral", "fractional", "string", "boolean"]
CheckType = Literal["missing_column_check", "extra_column_check", "data_type_check", "completeness_check",
                    "range_check", "categorical_values_check"]
MAX_DOMAIN = 20  # a string column with at most this many distinct values gets a domain (its categories)


class FeatureConstraint(BaseModel):
    """What one column must satisfy; suggested from a baseline, and a person may edit it."""
    model_config = ConfigDict(extra="forbid")

    name: str
    inferred_type: ValueType
    completeness: float = Field(..., ge=0, le=1, description="share of rows with a value in the baseline")
    is_non_negative: bool | None = Field(None, description="numbers: no value below 0 in the baseline")
    min: float | None = Field(None, description="numbers: the smallest baseline value")
    max: float | None = Field(None, description="numbers: the largest baseline value")
    domains: list[str] | None = Field(None, description="strings with few values: the values the baseline has")


class MonitoringConfig(BaseModel):
    """How much a window may stray before a check is violated."""
    model_config = ConfigDict(extra="forbid")

    datatype_check_threshold: float = Field(0.1, ge=0, le=1, description="share of values of another type allowed")
    completeness_tolerance: float = Field(0.05, ge=0, le=1, description="completeness may fall this much below the baseline's")
    range_threshold: float = Field(0.01, ge=0, le=1, description="share of values outside [min, max] allowed")
    domain_content_threshold: float = Field(0.01, ge=0, le=1, description="share of values outside the domain allowed")


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 0
    baseline_rows: int = Field(..., ge=1)
    features: list[FeatureConstraint]
    monitoring_config: MonitoringConfig = Field(default_factory=MonitoringConfig)

    @classmethod
    def parse(cls, data: Any, where: str = "constraints") -> "Constraints":
        return validate_input(cls, data, where)

    def feature(self, name: str) -> FeatureConstraint | None:
        return next((f for f in self.features if f.name == name), None)


class Violation(BaseModel):
    feature_name: str
    constraint_check_type: CheckType
    description: str


def value_type(value: Any) -> ValueType | None:
    """The type of one value (None for a missing one); an integral float such as 3.0 counts as integral."""
    import numpy as np
    import pandas as pd

    if value is None or pd.isna(value) is True:  # None, NaN, NaT, pd.NA (a list gives an array: not missing)
        return None
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | np.integer):
        return "integral"
    if isinstance(value, float | np.floating):
        return "integral" if float(value).is_integer() else "fractional"
    return "string"


def _types(values: Any) -> Any:
    """`value_type` of each value; numpy columns at once, object columns value by value."""
    import numpy as np
    import pandas as pd

    kind = values.dtype.kind
    if kind in "biuf" and isinstance(values.dtype, np.dtype):  # not pandas' nullable Int64 / boolean
        arr = values.to_numpy()
        if kind == "f":
            whole = np.isfinite(arr) & (arr == np.floor(np.where(np.isfinite(arr), arr, 0)))
            out = np.where(np.isnan(arr), None, np.where(whole, "integral", "fractional"))
        else:
            out = np.full(arr.shape, "boolean" if kind == "b" else "integral", dtype=object)
        return pd.Series(out, index=values.index, dtype=object)
    return pd.Series([value_type(v) for v in values], index=values.index, dtype=object)


def _column_type(types: Any) -> ValueType:
    """One type for a column: fractional beats integral; otherwise the most common type of its values."""
    present = types.dropna()
    if present.empty:
        return "string"
    counts = present.value_counts()
    if {"integral", "fractional"} <= set(counts.index) and counts[["integral", "fractional"]].sum() >= counts.max():
        return "fractional"
    return str(counts.idxmax())  # type: ignore[return-value]


def suggest_constraints(baseline: Any, *, max_domain: int = MAX_DOMAIN) -> Constraints:
    """Constraints suggested from a baseline DataFrame (e.g. the features of the training data)."""
    import pandas as pd

    if not isinstance(baseline, pd.DataFrame) or baseline.empty:
        raise ValueError("constraints are suggested from a baseline with at least one row")
    features = []
    for name in baseline.columns:
        col = baseline[name]
        types = _types(col)
        kind = _column_type(types)
        present = col[types.notna()]
        c = FeatureConstraint(name=str(name), inferred_type=kind, completeness=float(len(present) / len(col)))
        if kind in ("integral", "fractional") and len(present):
            numbers = pd.to_numeric(present[types.isin(["integral", "fractional"])], errors="coerce").dropna()
            if len(numbers):
                c.min, c.max = float(numbers.min()), float(numbers.max())
                c.is_non_negative = bool(c.min >= 0)
        elif kind == "string":
            values = present.astype(str).unique()
            if 0 < len(values) <= max_domain:
                c.domains = sorted(values)
        features.append(c)
    return Constraints(baseline_rows=len(baseline), features=features)


def check_constraints(constraints: Constraints, window: Any) -> list[Violation]:
    """The violations of a window (a DataFrame of captured requests or their features) against constraints."""
    import pandas as pd

    cfg = constraints.monitoring_config
    out: list[Violation] = []
    expected = {f.name for f in constraints.features}
    for name in window.columns:
        if str(name) not in expected:
            out.append(Violation(feature_name=str(name), constraint_check_type="extra_column_check",
                                 description=f"`{name}` is not in the baseline's columns"))
    n = len(window)
    for f in constraints.features:
        if f.name not in window.columns:
            out.append(Violation(feature_name=f.name, constraint_check_type="missing_column_check",
                                 description=f"`{f.name}` is missing from the window (the baseline has it)"))
            continue
        if not n:
            continue
        col = window[f.name]
        types = _types(col)
        present = col[types.notna()]
        completeness = len(present) / n
        if completeness < f.completeness - cfg.completeness_tolerance:
            out.append(Violation(feature_name=f.name, constraint_check_type="completeness_check", description=(
                f"`{f.name}` has a value in {completeness:.1%} of {n:,} rows; the baseline in {f.completeness:.1%} "
                f"(allowed down to {max(f.completeness - cfg.completeness_tolerance, 0):.1%})")))
        if present.empty:
            continue
        allowed = {"integral", "fractional"} if f.inferred_type == "fractional" else {f.inferred_type}
        wrong = types[types.notna() & ~types.isin(allowed)]
        if len(wrong) / len(present) > cfg.datatype_check_threshold:
            seen = ", ".join(f"{k} {v:,}" for k, v in wrong.value_counts().items())
            out.append(Violation(feature_name=f.name, constraint_check_type="data_type_check", description=(
                f"`{f.name}` should be {f.inferred_type}, but {len(wrong) / len(present):.1%} of its values are not "
                f"({seen}; allowed {cfg.datatype_check_threshold:.0%})")))
        if f.min is not None and f.max is not None:
            numbers = pd.to_numeric(present[types.isin(["integral", "fractional"])], errors="coerce").dropna()
            outside = numbers[(numbers < f.min) | (numbers > f.max)]
            negative = f.is_non_negative and bool((numbers < 0).any())
            if len(numbers) and (len(outside) / len(numbers) > cfg.range_threshold or negative):
                out.append(Violation(feature_name=f.name, constraint_check_type="range_check", description=(
                    f"{len(outside):,} of {len(numbers):,} values of `{f.name}` ({len(outside) / len(numbers):.1%}) lie "
                    f"outside the baseline's range [{f.min:g}, {f.max:g}] (seen {numbers.min():g} to {numbers.max():g}; "
                    f"allowed {cfg.range_threshold:.0%}" + ("; negative values, none in the baseline)" if negative else ")"))))
        if f.domains is not None:
            text = present.astype(str)
            new = text[~text.isin(f.domains)]
            if len(new) / len(text) > cfg.domain_content_threshold:
                top = ", ".join(f"`{k}` ({v:,})" for k, v in new.value_counts().head(5).items())
                out.append(Violation(feature_name=f.name, constraint_check_type="categorical_values_check", description=(
                    f"{len(new) / len(text):.1%} of the values of `{f.name}` are new categories: {top} (allowed "
                    f"{cfg.domain_content_threshold:.0%}; known: {', '.join(f.domains)})")))
    return out

"""Drift decisions against Evidently's own (evidently 0.7, legacy DataDriftTable) on generated data sets."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from core.errors import UserError
from runtimes.monitoring.drift import detect_drift, infer_kind, wasserstein_sorted

# Evidently's chi-squared divides by the zero expected count of a value the reference never had.
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")

EVIDENTLY_TESTS = {"K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z",
                   "Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon"}


def evidently_drift(ref: pd.DataFrame, cur: pd.DataFrame, kinds: dict[str, str]) -> dict:
    """Evidently's per-column test, score and decision, and its data-set decision."""
    import pandas.core.dtypes.common as dtypes

    # evidently 0.7.23 imports a helper that pandas 3 removed (used only by a data-type test we never run).
    if not hasattr(dtypes, "infer_dtype_from_object"):
        dtypes.infer_dtype_from_object = lambda dtype: np.dtype(dtype).type
    from evidently.legacy.metrics import DataDriftTable
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report

    report = Report(metrics=[DataDriftTable()])
    mapping = ColumnMapping(numerical_features=[c for c, k in kinds.items() if k == "numerical"],
                            categorical_features=[c for c, k in kinds.items() if k == "categorical"],
                            target=None, prediction=None)
    report.run(reference_data=ref, current_data=cur, column_mapping=mapping)
    result = report.as_dict()["metrics"][0]["result"]
    columns = {name: (EVIDENTLY_TESTS[c["stattest_name"]], c["drift_score"], c["drift_detected"])
               for name, c in result["drift_by_columns"].items()}
    return {"columns": columns, "dataset_drift": result["dataset_drift"]}


def same_decisions(ref: pd.DataFrame, cur: pd.DataFrame, kinds: dict[str, str]) -> None:
    ours = detect_drift(ref, cur, kinds)
    theirs = evidently_drift(ref, cur, kinds)
    for col in ours.columns:
        test, score, drifted = theirs["columns"][col.column]
        assert (col.test, col.drifted) == (test, drifted), (col, theirs["columns"][col.column])
        assert col.statistic == pytest.approx(score, rel=1e-6, abs=1e-12), col
    assert ours.dataset_drift == theirs["dataset_drift"]


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, cats: tuple[float, ...] = (0.5, 0.3, 0.2),
          flip: float = 0.3) -> pd.DataFrame:
    return pd.DataFrame({
        "response_length": rng.gamma(4.0, 50.0 * (1 + shift), n),
        "latency_ms": rng.normal(200 + 60 * shift, 30, n),
        "language": rng.choice(["en", "fr", "de"], n, p=list(cats)),
        "is_error": rng.random(n) < flip,
        "stars": rng.integers(1, 4, n).astype(float),  # 3 values: tested as categories
    })


KINDS = {"response_length": "numerical", "latency_ms": "numerical", "language": "categorical",
         "is_error": "categorical", "stars": "numerical"}


@pytest.mark.parametrize("n_ref,n_cur,shift,cats,flip", [
    (400, 300, 0.0, (0.5, 0.3, 0.2), 0.3),  # small reference, no drift
    (400, 300, 0.4, (0.2, 0.3, 0.5), 0.5),  # small reference, drift everywhere
    (900, 1000, 0.05, (0.5, 0.3, 0.2), 0.32),  # small reference, slight changes
    (5000, 4000, 0.0, (0.5, 0.3, 0.2), 0.3),  # large reference, no drift
    (5000, 4000, 0.5, (0.1, 0.2, 0.7), 0.6),  # large reference, drift
    (3000, 200, 0.12, (0.45, 0.35, 0.2), 0.3),  # large reference, small current, borderline distances
])
def test_same_decisions_as_evidently(n_ref, n_cur, shift, cats, flip):
    rng = np.random.default_rng(n_ref + n_cur)
    same_decisions(frame(rng, n_ref), frame(rng, n_cur, shift, cats, flip), KINDS)


def test_same_decisions_with_gaps_new_values_and_one_value():
    rng = np.random.default_rng(7)
    ref, cur = frame(rng, 600), frame(rng, 500, 0.1)
    ref.loc[::7, "response_length"] = np.nan
    # Infinite values with NaN beside them: Evidently drops both (without a NaN in the column it keeps the
    # infinities, a shortcut of its `is_contains_nans` check; we always drop them, as its comment says it means to).
    cur.loc[::11, "latency_ms"] = np.inf
    cur.loc[5, "latency_ms"] = np.nan
    cur.loc[:40, "language"] = "es"  # a value the reference never had: chi-squared p = 0
    ref["constant"] = "same"
    cur["constant"] = "same"
    same_decisions(ref, cur, {**KINDS, "constant": "categorical"})
    assert detect_drift(ref, cur, {"constant": "categorical"}).columns[0].statistic == 1.0


def test_large_reference_few_numeric_values_uses_jensen_shannon():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"tokens": rng.integers(0, 4, 2000).astype(float)})
    cur = pd.DataFrame({"tokens": rng.integers(1, 5, 2000).astype(float)})
    report = detect_drift(ref, cur, {"tokens": "numerical"})
    assert report.columns[0].test == "jensenshannon" and report.columns[0].drifted
    same_decisions(ref, cur, {"tokens": "numerical"})


def test_dataset_drift_at_half_the_columns():
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    cur = pd.DataFrame({"a": rng.normal(2, size=300), "b": rng.normal(size=300)})
    report = detect_drift(ref, cur, {"a": "numerical", "b": "numerical"})
    assert report.drifted_columns == ["a"] and report.share_drifted == 0.5 and report.dataset_drift
    assert "a: drifted, K-S p" in report.columns[0].describe()
    same_decisions(ref, cur, {"a": "numerical", "b": "numerical"})


def test_wasserstein_matches_scipy_with_ties():
    rng = np.random.default_rng(5)
    u = rng.integers(0, 50, 3000).astype(float)
    v = rng.normal(25, 10, 1700).round(1)
    assert wasserstein_sorted(np.sort(u), np.sort(v)) == pytest.approx(wasserstein_distance(u, v), rel=1e-12)


def test_kinds_are_inferred_as_evidently_does():
    n = 100
    assert infer_kind(pd.Series(np.arange(n, dtype=float))) == "numerical"
    assert infer_kind(pd.Series(np.arange(n))) == "numerical"
    assert infer_kind(pd.Series(np.arange(n) % 4)) == "categorical"
    assert infer_kind(pd.Series(["en", "fr"] * 50)) == "categorical"
    assert infer_kind(pd.Series([f"text {i}" for i in range(n)])) is None  # free text is not tested
    report = detect_drift(pd.DataFrame({"x": np.arange(n) % 4, "t": [str(i) for i in range(n)]}),
                          pd.DataFrame({"x": np.arange(n) % 3, "t": [str(i) for i in range(n)]}))
    assert [c.column for c in report.columns] == ["x"]


def test_bad_input_says_what_is_wrong():
    ref = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(UserError, match="`b` is missing from the reference"):
        detect_drift(ref, pd.DataFrame({"b": [1.0]}), {"b": "numerical"})
    with pytest.raises(UserError, match="no values in the current"):
        detect_drift(ref, pd.DataFrame({"a": [np.nan]}), {"a": "numerical"})
    with pytest.raises(UserError, match="not numbers"):
        detect_drift(ref, pd.DataFrame({"a": ["x"]}), {"a": "numerical"})

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
    assert infer_kind(pd.Series([f"text {i}" for i in range(n)])) == "text"  # free text: text content drift
    assert infer_kind(pd.Series(np.arange(n, dtype=np.uint8))) is None  # Evidently leaves unsigned ints out
    report = detect_drift(pd.DataFrame({"x": np.arange(n) % 4, "t": [str(i) for i in range(n)],
                                        "u": np.arange(n, dtype=np.uint64)}),
                          pd.DataFrame({"x": np.arange(n) % 3, "t": [str(i) for i in range(n)],
                                        "u": np.arange(n, dtype=np.uint64)}))
    assert [(c.column, c.kind) for c in report.columns] == [("x", "categorical"), ("t", "text")]


def test_bad_input_says_what_is_wrong():
    ref = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(UserError, match="`b` is missing from the reference"):
        detect_drift(ref, pd.DataFrame({"b": [1.0]}), {"b": "numerical"})
    with pytest.raises(UserError, match="no values in the current"):
        detect_drift(ref, pd.DataFrame({"a": [np.nan]}), {"a": "numerical"})
    with pytest.raises(UserError, match="not numbers"):
        detect_drift(ref, pd.DataFrame({"a": ["x"]}), {"a": "numerical"})


# ---- Evidently's default Report (no column mapping) on mixed frames --------------------------------------
# New data sets built for this comparison: every dtype Evidently's type inference treats on its own.
WORDS = {"billing": "invoice charge refund card payment receipt".split(),
         "shipping": "parcel courier delivery tracking address late".split(),
         "account": "password login email profile settings locked".split()}


def comments(rng: np.random.Generator, n: int, mix: tuple[float, float, float]) -> list[str]:
    """Free text: short requests drawn from three topics' words, each one different."""
    topics = rng.choice(list(WORDS), n, p=list(mix))
    return [f"ticket {i}: " + " ".join(rng.choice(WORDS[t], rng.integers(3, 9))) for i, t in enumerate(topics)]


def mixed_frame(rng: np.random.Generator, n: int, shift: float = 0.0,
                text_mix: tuple[float, float, float] = (0.5, 0.3, 0.2)) -> pd.DataFrame:
    opted = pd.Series(rng.random(n) < 0.4 + shift / 4, dtype=object)
    opted[rng.random(n) < 0.1] = np.nan  # booleans with missing values: an object column
    return pd.DataFrame({
        "amount": rng.lognormal(3 + shift / 3, 0.8, n),
        "visits": rng.poisson(12 + 4 * shift, n),  # int64, many values: numerical
        "tier": rng.choice([1, 2, 3, 4], n, p=[0.4, 0.3, 0.2, 0.1] if not shift else [0.25, 0.25, 0.25, 0.25]),
        "opted_in": opted,
        "flag": rng.random(n) < 0.2 + shift / 5,  # bool: categorical, Z-test
        "age_u8": rng.integers(18, 90 + int(20 * shift), n).astype(np.uint8),
        "bytes_u64": rng.integers(0, 10**9, n).astype(np.uint64),
        "comment": comments(rng, n, text_mix),
        "country": rng.choice(["de", "fr", "it", "es", "nl"], n),
        "seen_at": pd.date_range("2026-01-01", periods=n, freq="min") + pd.Timedelta(days=30 * shift),
        "nothing": pd.Series([None] * n, dtype=object),
        "constant_f": np.full(n, 2.5),
        "constant_s": ["v1"] * n,
        "maybe": pd.array(rng.random(n) < 0.5, dtype="boolean"),
    })


def evidently_default(ref: pd.DataFrame, cur: pd.DataFrame) -> dict:
    """Evidently's DataDriftPreset with its own type inference: the kind of each column, the test, score and
    decision of each tested column, and the data-set decision."""
    import pandas.core.dtypes.common as dtypes

    if not hasattr(dtypes, "infer_dtype_from_object"):
        dtypes.infer_dtype_from_object = lambda dtype: np.dtype(dtype).type
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snap = Report([DataDriftPreset()], include_tests=True).run(cur, ref)
    d = snap.dict()
    definition = snap.context.data_definition
    kinds = {**{c: "numerical" for c in definition.numerical_columns},
             **{c: "categorical" for c in definition.categorical_columns},
             **{c: "text" for c in definition.text_columns}}
    methods = {m["config"]["column"]: (m["config"]["method"], float(m["value"]))
               for m in d["metrics"] if m["config"]["type"].endswith("ValueDrift")}
    decisions = {t["name"].removeprefix("Value Drift for column "): t["status"].value == "FAIL"
                 for t in d["tests"] if t["name"].startswith("Value Drift for column ")}
    dataset = next(t for t in d["tests"] if t["name"].startswith("Share of Drifted Columns"))
    return {"kinds": kinds, "columns": {c: (*methods[c], decisions[c]) for c in methods},
            "dataset_drift": dataset["status"].value == "FAIL"}


EVIDENTLY_DEFAULT_TESTS = {**EVIDENTLY_TESTS, "Percentile text content drift": "perc_text_content_drift",
                           "Absolute text content drift": "abs_text_content_drift"}


def agreement(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[int, int, list]:
    """(columns agreeing, columns tested, disagreements) of Lathe's inferred-kind report and Evidently's."""
    ours = detect_drift(ref, cur)
    theirs = evidently_default(ref, cur)
    assert {c.column: c.kind for c in ours.columns} == theirs["kinds"]
    wrong = []
    for col in ours.columns:
        method, score, drifted = theirs["columns"][col.column]
        same = (col.test, col.drifted) == (EVIDENTLY_DEFAULT_TESTS[method], drifted)
        if not same or col.statistic != pytest.approx(score, rel=1e-6, abs=1e-12):
            wrong.append((col, theirs["columns"][col.column]))
    if ours.dataset_drift != theirs["dataset_drift"]:
        wrong.append(("dataset_drift", ours.dataset_drift, theirs["dataset_drift"]))
    return len(ours.columns) - len([w for w in wrong if w[0] != "dataset_drift"]), len(ours.columns), wrong


MIXED_CASES = {  # name: (reference rows, current rows, shift, text mix of the current rows)
    "small, unchanged": (400, 350, 0.0, (0.5, 0.3, 0.2)),
    "small, drifted": (400, 350, 1.0, (0.1, 0.2, 0.7)),
    "small, only the text moved": (600, 600, 0.0, (0.1, 0.1, 0.8)),
    "near the 1000-row switch": (1000, 900, 0.3, (0.45, 0.3, 0.25)),
    "large, unchanged": (3000, 2500, 0.0, (0.5, 0.3, 0.2)),
    "large, drifted": (3000, 2500, 1.0, (0.2, 0.2, 0.6)),
    "large, only the text moved": (2000, 1500, 0.0, (0.05, 0.15, 0.8)),
}


@pytest.mark.parametrize("case", list(MIXED_CASES))
def test_mixed_frames_agree_with_evidentlys_defaults(case):
    n_ref, n_cur, shift, mix = MIXED_CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    ref, cur = mixed_frame(rng, n_ref), mixed_frame(rng, n_cur, shift, mix)
    agree, tested, wrong = agreement(ref, cur)
    assert not wrong, wrong
    assert tested == 8  # amount, visits, tier, flag, comment, country, constant_f, constant_s


def test_kinds_match_evidentlys_inference_column_by_column():
    from evidently.core.datasets import ColumnType, infer_column_type

    rng = np.random.default_rng(21)
    frame_ = mixed_frame(rng, 300)
    frame_["ints_10"] = np.arange(300) % 10  # ≤ 10 distinct integers: categorical
    frame_["ints_11"] = np.arange(300) % 11
    frame_["half_distinct"] = [f"v{i % 150}" for i in range(300)]  # exactly half distinct: categorical
    frame_["over_half"] = [f"v{i % 151}" for i in range(300)]
    frame_["lists"] = pd.Series([[1, 2]] * 300, dtype=object)
    frame_["mixed_obj"] = pd.Series([1, "a"] * 150, dtype=object)
    frame_["cat_dtype"] = pd.Categorical(rng.choice(["x", "y"], 300))
    frame_["f32"] = rng.random(300).astype(np.float32)
    frame_["i8"] = rng.integers(-100, 100, 300).astype(np.int8)
    theirs = {ColumnType.Numerical: "numerical", ColumnType.Categorical: "categorical", ColumnType.Text: "text"}
    for name in frame_.columns:
        assert infer_kind(frame_[name]) == theirs.get(infer_column_type(frame_[name])), name


def test_an_empty_numerical_column_is_left_out_where_evidently_refuses_the_report():
    rng = np.random.default_rng(5)
    ref, cur = mixed_frame(rng, 300), mixed_frame(rng, 300, 1.0)
    ref["gone"] = np.nan
    cur["gone"] = np.nan
    with pytest.raises(ValueError, match="empty column 'gone'"):
        evidently_default(ref, cur)
    ours = detect_drift(ref, cur)
    assert ours.column("gone") is None and "gone" in ours.skipped
    _, _, wrong = agreement(ref.drop(columns="gone"), cur.drop(columns="gone"))
    assert not wrong and ours.to_json()["drifted_columns"] == detect_drift(ref.drop(columns="gone"),
                                                                           cur.drop(columns="gone")).drifted_columns


# ---- uneven windows ----------------------------------------------------------------------------------------
def window(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    six = np.array([0.3, 0.25, 0.15, 0.12, 0.1, 0.08])
    moved = six[::-1] if shift else six
    return pd.DataFrame({
        "normal": rng.normal(shift, 1, n),
        "skewed": rng.gamma(2.0, 100 * (1 + shift), n),
        "few": rng.choice([0.0, 1.0, 2.0, 3.0], n, p=[0.4, 0.3, 0.2, 0.1] if not shift else [0.1, 0.2, 0.3, 0.4]),
        "three": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2] if not shift else [0.3, 0.3, 0.4]),
        "six": rng.choice(list("uvwxyz"), n, p=moved),
        "binary": rng.random(n) < 0.3 + shift / 5,
    })


WINDOW_KINDS = {"normal": "numerical", "skewed": "numerical", "few": "numerical", "three": "categorical",
                "six": "categorical", "binary": "categorical"}


@pytest.mark.parametrize("n_ref,n_cur", [(500, 5000), (5000, 500), pytest.param(500, 500, marks=pytest.mark.xfail(
    strict=True, reason="even windows keep Evidently's goodness-of-fit chi-squared (about 29 % of unchanged "
                        "3- and 6-value columns flagged at 500 rows), for the same decisions as Evidently"))])
def test_unchanged_columns_alert_at_the_nominal_rate_whatever_the_window_sizes(n_ref, n_cur):
    seeds = 200
    alarms: dict[str, list[bool]] = {}
    datasets = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        report = detect_drift(window(rng, n_ref), window(rng, n_cur), WINDOW_KINDS)
        datasets += report.dataset_drift
        for c in report.columns:
            alarms.setdefault(c.test, []).append(c.drifted)
    rates = {test: float(np.mean(v)) for test, v in alarms.items()}
    for test, rate in rates.items():
        # Distances have no nominal level; held to the tests' (a 500-row current is as noisy for both).
        assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(alarms[test])), rates
    assert datasets / seeds <= 0.02, (datasets, rates)
    if n_cur >= 2 * n_ref:
        assert "chisquare" not in rates and rates["chisquare_two_sample"] > 0  # the two-sample test ran


def test_the_reference_shares_taken_as_exact_would_flag_most_unchanged_columns():
    """Why the two-sample test: Evidently's goodness-of-fit chi-squared at 500 against 5,000 rows."""
    from scipy.stats import chisquare

    flagged = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        ref, cur = window(rng, 500)["six"].value_counts(), window(rng, 5000)["six"].value_counts()
        keys = sorted(set(ref.index) | set(cur.index))
        f_ref, f_cur = ref.reindex(keys, fill_value=0).to_numpy(), cur.reindex(keys, fill_value=0).to_numpy()
        flagged += chisquare(f_cur, f_ref * f_cur.sum() / f_ref.sum())[1] < 0.05
        assert detect_drift(pd.DataFrame({"six": window(rng, 500)["six"]}), pd.DataFrame({"six": window(rng, 5000)["six"]}),
                            {"six": "categorical"}).columns[0].test == "chisquare_two_sample"
    assert flagged >= 50


@pytest.mark.parametrize("n_ref,n_cur", [(500, 5000), (5000, 500)])
def test_real_shifts_are_still_found_in_uneven_windows(n_ref, n_cur):
    for seed in range(30):
        rng = np.random.default_rng(seed)
        ref, cur = window(rng, n_ref), window(rng, n_cur, shift=0.5)
        report = detect_drift(ref, cur, WINDOW_KINDS)
        # Every shifted column is found, but for one that even windows of the larger size miss too (the binary
        # share 0.3 → 0.4 is a Jensen-Shannon distance of 0.086 above 1000 reference rows, under its 0.1).
        even = detect_drift(ref, window(rng, n_ref, shift=0.5), WINDOW_KINDS)
        missed = set(WINDOW_KINDS) - set(report.drifted_columns)
        assert missed <= set(WINDOW_KINDS) - set(even.drifted_columns) and len(missed) <= 1, (
            seed, [c.describe() for c in report.columns])
        assert report.dataset_drift

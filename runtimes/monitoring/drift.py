"""Data drift with Evidently's default tests (evidently 0.7, `legacy/calculations/stattests/`), in numpy/scipy.

Per column, on values with NaN and ±inf dropped: up to 1000 reference rows a numerical column with more than
5 distinct values (reference and current together) gets the two-sample K-S test (drift when p ≤ 0.05), other
columns chi-squared (more than 2 values) or the two-proportion Z-test (p < 0.05); above 1000 reference rows,
normalised Wasserstein distance (≥ 0.1) for numerical columns with more than 5 values and Jensen-Shannon
distance (≥ 0.1) for the rest. Free text gets Evidently's text content drift: a TF-IDF domain classifier's ROC
AUC (scikit-learn, the same pipeline and seeds), against the 95th percentile of random classifiers' up to 1000
reference rows, against 0.55 above. Kinds are inferred as Evidently's `infer_column_type` does. The data set
drifts when at least half of its columns do.

Two knowing differences: infinities are always dropped (Evidently keeps them in a column that has no NaN), and
when the current side has at least twice the rows of a reference of up to 1000 rows, chi-squared compares the
two samples (a test of homogeneity) instead of taking the reference shares as exact, which would flag most
unchanged columns at such sizes. Pure: no I/O.
"""
from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from core.errors import UserError

ColumnKind = Literal["numerical", "categorical", "text"]
SMALL_REFERENCE = 1000  # Evidently switches from statistical tests to distances above this many reference rows
FEW_VALUES = 5  # a numerical column with at most this many distinct values is tested as categories
INTEGER_CARDINALITY_LIMIT = 10  # Evidently's type inference: an integer column with ≤ 10 values is categorical
UNEVEN = 2  # a current side with this many times the reference's rows gets the two-sample chi-squared
TEXT_PERCENTILE = 0.95  # a text domain classifier drifts above this percentile of random classifiers' ROC AUC
TEXT_AUC = 0.55  # ... or, above 1000 reference rows, above this ROC AUC
DRIFT_SHARE = 0.5
P_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1

TEST_NAMES = {"ks": "K-S p_value", "chisquare": "chi-square p_value", "z": "Z-test p_value",
              "wasserstein": "Wasserstein distance (normed)", "jensenshannon": "Jensen-Shannon distance",
              "chisquare_two_sample": "two-sample chi-square p_value",
              "perc_text_content_drift": "Percentile text content drift",
              "abs_text_content_drift": "Absolute text content drift"}
P_VALUE_TESTS = ("ks", "chisquare", "z", "chisquare_two_sample")


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: ColumnKind
    test: str  # a key of TEST_NAMES
    statistic: float  # a p-value for the tests, a distance for the distances, a ROC AUC for text
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int

    @property
    def test_name(self) -> str:
        return TEST_NAMES[self.test]

    @property
    def compare(self) -> str:
        """How the statistic is held against the threshold when the column drifts."""
        if self.test in P_VALUE_TESTS:
            return "≤" if self.test == "ks" else "<"
        return ">" if self.kind == "text" else "≥"

    def describe(self) -> str:
        """One line for a person: what was tested, with which test, what came out."""
        verdict = "drifted" if self.drifted else "no drift"
        if self.test in P_VALUE_TESTS:
            rule = f"{self.test_name.removesuffix(' p_value')} p = {self.statistic:.3g}"
        elif self.kind == "text":
            rule = f"{self.test_name}: domain classifier ROC AUC = {self.statistic:.3g}"
        else:
            rule = f"{self.test_name} = {self.statistic:.3g}"
        return f"{self.column}: {verdict}, {rule} (drift when {self.compare} {self.threshold:.3g})"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "test_name": self.test_name}


@dataclass(frozen=True)
class DriftReport:
    columns: list[ColumnDrift]
    drift_share: float  # the share of drifted columns at which the data set drifts
    skipped: dict[str, str] = field(default_factory=dict)  # column → why it was not tested

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.columns) and self.share_drifted >= self.drift_share

    def column(self, name: str) -> ColumnDrift | None:
        return next((c for c in self.columns if c.column == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"dataset_drift": self.dataset_drift, "share_drifted": self.share_drifted,
                "drift_share": self.drift_share, "drifted_columns": self.drifted_columns,
                "columns": [c.to_json() for c in self.columns], "skipped": self.skipped}


def infer_kind(values: Any) -> ColumnKind | None:
    """Evidently's `infer_column_type`, by dtype name: floats numerical; signed integers categorical up to 10
    distinct values; bool and category categorical; strings text when more than half the values are distinct,
    else categorical. None (not tested), as in Evidently: unsigned integers, nullable booleans, object columns
    other than strings (booleans with missing values among them), datetimes, and columns with no values."""
    import pandas as pd

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    name = s.dtype.name
    if name.startswith("float"):
        return "numerical"
    if name.startswith("int"):  # not "uint": Evidently leaves unsigned integers untyped
        return "categorical" if s.nunique() <= INTEGER_CARDINALITY_LIMIT else "numerical"
    if name in ("string", "str"):
        return "text" if s.nunique() > s.count() * 0.5 else "categorical"
    if name == "object":
        present = s.dropna()
        # Evidently looks at the first and the last value only.
        if present.empty or not (isinstance(present.iloc[0], str) and isinstance(present.iloc[-1], str)):
            return None
        return "text" if s.nunique() > s.count() * 0.5 else "categorical"
    if name in ("bool", "category"):
        return "categorical"
    return None


def detect_drift(reference: Any, current: Any, kinds: Mapping[str, ColumnKind] | None = None, *,
                 drift_share: float = DRIFT_SHARE, threads: int = 2) -> DriftReport:
    """Drift of each column of `current` against `reference` (DataFrames or mappings of column → values).

    `kinds` names the columns to test and their kind; left out, every shared column whose kind Evidently's
    rules infer from the current data (a column with no values on a side is then left out, in `skipped`).
    Raises `UserError` for a missing column, or an empty one that `kinds` names."""
    import pandas as pd

    ref = reference if isinstance(reference, pd.DataFrame) else pd.DataFrame(dict(reference))
    cur = current if isinstance(current, pd.DataFrame) else pd.DataFrame(dict(current))
    skipped: dict[str, str] = {}
    if kinds is None:
        inferred = {c: infer_kind(cur[c]) for c in cur.columns if c in ref.columns}
        kinds = {}
        for c, k in inferred.items():
            empty = [side for side, f in (("reference", ref), ("current", cur)) if not _has_values(f[c])]
            if k is not None and empty:
                skipped[c] = f"no values in the {' and '.join(empty)} data"
            elif k is not None:
                kinds[c] = k
    for name, kind in kinds.items():
        for side, frame in (("reference", ref), ("current", cur)):
            if name not in frame.columns:
                raise UserError(f"column `{name}` is missing from the {side} data; its columns: "
                                f"{', '.join(map(str, frame.columns))}")
        if kind not in ("numerical", "categorical", "text"):
            raise UserError(f"column `{name}`: a drift test needs kind `numerical`, `categorical` or `text`, "
                            f"not `{kind}`")
    if not 0 < drift_share <= 1:
        raise UserError(f"drift_share is the share of columns that must drift, between 0 and 1, not {drift_share}")

    def one(item: tuple[str, ColumnKind]) -> ColumnDrift:
        name, kind = item
        return column_drift(name, ref[name], cur[name], kind)

    items = list(kinds.items())
    # numpy sorts and histograms release the GIL: columns run side by side on the available cores.
    if threads > 1 and len(items) > 1 and len(ref) + len(cur) > 100_000:
        with ThreadPoolExecutor(threads) as pool:
            columns = list(pool.map(one, items))
    else:
        columns = [one(i) for i in items]
    return DriftReport(columns=columns, drift_share=drift_share, skipped=skipped)


def _has_values(s: Any) -> bool:
    if s.dtype.kind == "f":
        return bool(np.isfinite(s.to_numpy()).any())
    return bool(s.notna().any())


def column_drift(name: str, reference: Any, current: Any, kind: ColumnKind) -> ColumnDrift:
    """One column's drift under Evidently's default test selection."""
    if kind == "text":
        return _text(name, _texts(reference, name, "reference"), _texts(current, name, "current"))
    if kind == "numerical":
        ref, cur = _finite(reference, name, "reference"), _finite(current, name, "current")
        return _numerical(name, ref, cur)
    ref_counts, cur_counts = _counts(reference, name, "reference"), _counts(current, name, "current")
    return _categorical(name, kind, ref_counts, cur_counts)


# ---- numerical ------------------------------------------------------------------------------------------
def _finite(values: Any, name: str, side: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"column `{name}` is tested as numerical but its {side} values are not numbers") from None
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise UserError(f"column `{name}` has no values in the {side} data (all empty or infinite)")
    return arr


def _numerical(name: str, ref: np.ndarray, cur: np.ndarray) -> ColumnDrift:
    ref_sorted, cur_sorted = np.sort(ref), np.sort(cur)
    distinct = _distinct_sorted(ref_sorted, cur_sorted, FEW_VALUES + 1)
    if distinct <= FEW_VALUES:
        ref_counts, cur_counts = _sorted_counts(ref_sorted), _sorted_counts(cur_sorted)
        return _categorical(name, "numerical", ref_counts, cur_counts)
    if ref.size <= SMALL_REFERENCE:
        from scipy.stats import ks_2samp

        p = float(ks_2samp(ref_sorted, cur_sorted)[1])
        return ColumnDrift(name, "numerical", "ks", p, P_THRESHOLD, p <= P_THRESHOLD, ref.size, cur.size)
    norm = max(float(np.std(ref)), 0.001)
    value = wasserstein_sorted(ref_sorted, cur_sorted) / norm
    return ColumnDrift(name, "numerical", "wasserstein", value, DISTANCE_THRESHOLD, value >= DISTANCE_THRESHOLD,
                       ref.size, cur.size)


def wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
    """The 1-D Wasserstein distance ∫|F_u − F_v| of two samples (as scipy's), from one joint argsort."""
    both = np.concatenate([u, v])
    order = np.argsort(both)
    values = both[order]
    # Each point of the merged sample raises one of the two empirical CDFs by one step.
    from_u = np.cumsum(order < u.size)
    from_v = np.arange(1, both.size + 1) - from_u
    gap = np.abs(from_u[:-1] / u.size - from_v[:-1] / v.size)
    return float(np.dot(gap, np.diff(values)))


def _distinct_sorted(a: np.ndarray, b: np.ndarray, enough: int) -> int:
    """Distinct values of two sorted arrays together, counted exactly up to `enough`."""
    first = _sorted_unique(a)
    if first.size >= enough:
        return first.size
    return np.union1d(first, _sorted_unique(b)).size


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    if a.size == 0:
        return a
    return a[np.concatenate(([True], a[1:] != a[:-1]))]


def _sorted_counts(a: np.ndarray) -> dict[Any, int]:
    starts = np.flatnonzero(np.concatenate(([True], a[1:] != a[:-1])))
    sizes = np.diff(np.append(starts, a.size))
    return {a[s].item(): int(n) for s, n in zip(starts, sizes)}


# ---- categorical ----------------------------------------------------------------------------------------
def _counts(values: Any, name: str, side: str) -> dict[Any, int]:
    import pandas as pd

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if s.dtype.kind == "f":
        s = s[np.isfinite(s.to_numpy())]
    counts = s.value_counts(dropna=True)
    counts = counts[counts > 0]  # a pandas Categorical lists its unused categories with count 0
    if counts.empty:
        raise UserError(f"column `{name}` has no values in the {side} data")
    return {k: int(n) for k, n in counts.items()}


def _categorical(name: str, kind: ColumnKind, ref: dict[Any, int], cur: dict[Any, int]) -> ColumnDrift:
    n_ref, n_cur = sum(ref.values()), sum(cur.values())
    keys = list(ref.keys() | cur.keys())
    f_ref = np.array([ref.get(k, 0) for k in keys], dtype=np.float64)
    f_cur = np.array([cur.get(k, 0) for k in keys], dtype=np.float64)
    if n_ref > SMALL_REFERENCE:
        from scipy.spatial.distance import jensenshannon

        value = float(jensenshannon(f_ref / n_ref, f_cur / n_cur))
        return ColumnDrift(name, kind, "jensenshannon", value, DISTANCE_THRESHOLD, value >= DISTANCE_THRESHOLD,
                           n_ref, n_cur)
    if len(keys) > 2 and n_cur >= UNEVEN * n_ref:
        from scipy.stats import chi2_contingency

        # Both sides are samples: the goodness-of-fit test below treats the reference shares as exact, so its
        # statistic grows with n_cur / n_ref on unchanged data. The test of homogeneity counts both samples' noise.
        p = float(chi2_contingency(np.vstack([f_ref, f_cur]), correction=False)[1])
        return ColumnDrift(name, kind, "chisquare_two_sample", p, P_THRESHOLD, p < P_THRESHOLD, n_ref, n_cur)
    if len(keys) > 2:
        from scipy.stats import chisquare

        with np.errstate(divide="ignore", invalid="ignore"):
            # A value never seen in the reference has expected count 0: the statistic is infinite, p = 0.
            p = float(chisquare(f_cur, f_ref * (n_cur / n_ref))[1])
        return ColumnDrift(name, kind, "chisquare", p, P_THRESHOLD, p < P_THRESHOLD, n_ref, n_cur)
    p = _z_test(ref, cur, keys, n_ref, n_cur)
    return ColumnDrift(name, kind, "z", p, P_THRESHOLD, p < P_THRESHOLD, n_ref, n_cur)


def _z_test(ref: dict[Any, int], cur: dict[Any, int], keys: list[Any], n_ref: int, n_cur: int) -> float:
    """Two-proportion Z-test of the share of values other than the first (sorted) one."""
    from scipy.stats import norm

    if len(ref) == 1 and len(cur) == 1 and ref.keys() == cur.keys():
        return 1.0
    first = sorted(keys)[0]
    p1 = (n_ref - ref.get(first, 0)) / n_ref
    p2 = (n_cur - cur.get(first, 0)) / n_cur
    pooled = (p1 * n_ref + p2 * n_cur) / (n_ref + n_cur)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return float(2 * (1 - norm.cdf(np.abs(z))))


# ---- text ----------------------------------------------------------------------------------------------
def _texts(values: Any, name: str, side: str) -> list[str]:
    import pandas as pd

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    texts = [str(t) for t in s.dropna()]
    if not texts:
        raise UserError(f"column `{name}` has no values in the {side} data")
    return texts


def _text(name: str, ref: list[str], cur: list[str]) -> ColumnDrift:
    """Evidently's text content drift: how well a TF-IDF + linear classifier, trained on half of the rows, tells
    current texts from reference ones on the other half (ROC AUC); 0.5 means it cannot."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    labels = np.array([0] * len(ref) + [1] * len(cur))
    x_train, x_test, y_train, y_test = train_test_split(np.array(ref + cur, dtype=object), labels, test_size=0.5,
                                                        random_state=42, shuffle=True)
    pipeline = Pipeline([
        ("vectorization", TfidfVectorizer(sublinear_tf=True, max_df=0.5, stop_words="english")),
        ("classification", SGDClassifier(alpha=0.0001, max_iter=50, penalty="l1", loss="modified_huber",
                                         random_state=42)),
    ])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=50 is Evidently's choice; sklearn warns it may not converge
        pipeline.fit(x_train, y_train)
    auc = float(roc_auc_score(y_test, pipeline.predict_proba(x_test)[:, 1]))
    if len(ref) > SMALL_REFERENCE:
        return ColumnDrift(name, "text", "abs_text_content_drift", auc, TEXT_AUC, auc > TEXT_AUC, len(ref), len(cur))
    limit = _random_auc_percentile(y_test, 1 - TEXT_PERCENTILE)
    return ColumnDrift(name, "text", "perc_text_content_drift", auc, limit, auc > limit, len(ref), len(cur))


def _random_auc_percentile(y_test: np.ndarray, p_value: float, runs: int = 1000, seed: int = 42) -> float:
    """The (1 − p_value) percentile of the ROC AUC of `runs` random scorers, with Evidently's seeds (its global
    `np.random.seed` calls, here on private generators so the caller's random state is left alone)."""
    from scipy.stats import rankdata

    seeds = np.random.RandomState(seed).randint(0, runs * 10, size=runs)
    positive = np.asarray(y_test) == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    scores = np.vstack([np.random.RandomState(s).rand(len(positive)) for s in seeds])
    # ROC AUC from ranks (Mann-Whitney); random floats have no ties.
    ranks = rankdata(scores, axis=1)[:, positive].sum(axis=1)
    aucs = (ranks - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(np.percentile(aucs, 100 * (1 - p_value)))


def binned_shares(reference: np.ndarray, current: np.ndarray, bins: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shares of reference and current values per shared bin (for plots): bin edges, then the two shares."""
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins=bins)
    return (edges, np.histogram(reference, edges)[0] / max(reference.size, 1),
            np.histogram(current, edges)[0] / max(current.size, 1))

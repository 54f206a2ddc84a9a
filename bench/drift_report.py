"""Benchmark of Lathe's drift report against Evidently's (evidently 0.7, legacy DataDriftTable, the same
default tests): the time for 1,000,000 reference and 1,000,000 current rows × 20 columns (10 numerical, 10
categorical; target ≤ 5 s), and on every data set whether both make the same decision for each column and
for the data set.

Prints, per data set: rows, both times, per-column agreement and both data-set decisions; then the large data
set's time beside its target. Generates its data in memory; writes nothing.

`--mixed` instead compares with Evidently's default Report (its own type inference, no column mapping) on the
mixed frames of tests/test_monitoring_drift.py over several seeds (the agreement score), and counts false
alarms on unchanged columns in uneven windows (500 against 5,000 rows), Lathe's and Evidently's.

    .venv/bin/python bench/drift_report.py [--rows 1000000] [--skip-evidently-large] [--mixed [--seeds 5] [--uneven-only]]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

from runtimes.monitoring.drift import detect_drift  # noqa: E402

TARGET_S = 5.0
CATS = np.array(["en", "fr", "de", "es", "it", "nl", "pt", "sv"])


@dataclass(frozen=True)
class DataSet:
    name: str
    n_ref: int
    n_cur: int
    shift: float  # 0: current drawn like the reference
    n_num: int = 10
    n_cat: int = 10


def make(rng: np.random.Generator, n: int, cols: DataSet, shift: float) -> tuple[pd.DataFrame, dict[str, str]]:
    """Three columns in five of each kind move with `shift`, the others never do; some categorical columns are
    binary (Z-test) and some numerical ones take few values (tested as categories)."""
    data: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for i in range(cols.n_num):
        s = shift if i % 5 < 3 else 0.0
        if i % 5 == 4:
            data[f"num_{i}"] = rng.integers(0, 4 + int(s > 0), n).astype(float)  # ≤ 5 values
        elif i % 5 == 3:
            data[f"num_{i}"] = rng.gamma(2.0, 100.0 * (1 + s), n)  # a length-like, skewed column
        else:
            data[f"num_{i}"] = rng.normal(s, 1.0 + s / 2, n)
        kinds[f"num_{i}"] = "numerical"
    for i in range(cols.n_cat):
        s = shift if i % 5 < 3 else 0.0
        k = 2 if i % 4 == 1 else 3 + i % 5
        p = np.linspace(1.0, 1.0 + 3 * s, k)
        data[f"cat_{i}"] = CATS[:k][rng.choice(k, n, p=p / p.sum())]
        kinds[f"cat_{i}"] = "categorical"
    return pd.DataFrame(data), kinds


def evidently_report(ref: pd.DataFrame, cur: pd.DataFrame, kinds: dict[str, str]) -> tuple[dict[str, bool], bool]:
    import pandas.core.dtypes.common as dtypes

    # evidently 0.7.23 imports a helper pandas 3 removed; it is used only by a data-type test not run here.
    if not hasattr(dtypes, "infer_dtype_from_object"):
        dtypes.infer_dtype_from_object = lambda dtype: np.dtype(dtype).type
    from evidently.legacy.metrics import DataDriftTable
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report

    report = Report(metrics=[DataDriftTable()])
    report.run(reference_data=ref, current_data=cur, column_mapping=ColumnMapping(
        numerical_features=[c for c, k in kinds.items() if k == "numerical"],
        categorical_features=[c for c, k in kinds.items() if k == "categorical"], target=None, prediction=None))
    result = report.as_dict()["metrics"][0]["result"]
    return {c: bool(v["drift_detected"]) for c, v in result["drift_by_columns"].items()}, bool(result["dataset_drift"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large reference and current sets")
    parser.add_argument("--skip-evidently-large", action="store_true", help="do not run Evidently on the large set")
    parser.add_argument("--mixed", action="store_true", help="mixed frames and uneven windows (see above) only")
    parser.add_argument("--seeds", type=int, default=5, help="--mixed: seeds per mixed case (uneven: 40× as many)")
    parser.add_argument("--uneven-only", action="store_true", help="--mixed: the uneven windows only")
    args = parser.parse_args()
    if args.mixed:
        return mixed_and_uneven(args.seeds, mixed=not args.uneven_only)
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # Evidently's chi-squared divides by zero expected counts
    # Warm-up: imports (scipy, Evidently) are not part of either side's time.
    rng = np.random.default_rng(0)
    warm_ref, warm_kinds = make(rng, 50, DataSet("warm-up", 50, 50, 0.0), 0.0)
    detect_drift(warm_ref, warm_ref, warm_kinds)
    evidently_report(warm_ref, warm_ref, warm_kinds)
    sets = [DataSet("small ref, no drift", 800, 600, 0.0), DataSet("small ref, drift", 800, 600, 0.3),
            DataSet("small ref, slight drift", 1000, 1000, 0.08), DataSet("tiny ref, drift", 150, 150, 0.5),
            DataSet("large ref, no drift", 20_000, 10_000, 0.0), DataSet("large ref, drift", 20_000, 10_000, 0.6),
            DataSet("large ref, slight drift", 50_000, 50_000, 0.06),
            DataSet(f"{args.rows:,} × 20, drift", args.rows, args.rows, 0.5)]
    print(f"{'data set':<28} {'ref rows':>10} {'cur rows':>10} {'Lathe s':>8} {'Evidently s':>12} "
          f"{'columns agree':>14} {'drifted':>8} {'dataset drift (Lathe / Evidently)':>34}")
    large_time = None
    all_agree = True
    for i, ds in enumerate(sets):
        rng = np.random.default_rng(100 + i)
        ref, kinds = make(rng, ds.n_ref, ds, 0.0)
        cur, _ = make(rng, ds.n_cur, ds, ds.shift)
        started = time.perf_counter()
        ours = detect_drift(ref, cur, kinds)
        ours_s = time.perf_counter() - started
        large = ds is sets[-1]
        if large:
            large_time = ours_s
        if large and args.skip_evidently_large:
            print(f"{ds.name:<28} {ds.n_ref:>10,} {ds.n_cur:>10,} {ours_s:>8.2f} {'skipped':>12} {'':>14} "
                  f"{len(ours.drifted_columns):>8} {str(ours.dataset_drift):>34}")
            continue
        started = time.perf_counter()
        theirs, their_dataset = evidently_report(ref, cur, kinds)
        theirs_s = time.perf_counter() - started
        agree = sum(theirs[c.column] == c.drifted for c in ours.columns)
        all_agree &= agree == len(ours.columns) and their_dataset == ours.dataset_drift
        decision = f"{ours.dataset_drift} / {their_dataset}"
        print(f"{ds.name:<28} {ds.n_ref:>10,} {ds.n_cur:>10,} {ours_s:>8.2f} {theirs_s:>12.2f} "
              f"{f'{agree}/{len(ours.columns)}':>14} {len(ours.drifted_columns):>8} {decision:>34}")
    print(f"\nlarge report ({args.rows:,} + {args.rows:,} rows × 20 columns): {large_time:.2f} s "
          f"(target ≤ {TARGET_S:g} s): {'met' if large_time is not None and large_time <= TARGET_S else 'NOT met'}")
    print(f"same decisions as Evidently on every data set compared: {'yes' if all_agree else 'NO'}")
    return 0 if all_agree and large_time is not None and large_time <= TARGET_S else 1


def mixed_and_uneven(seeds: int, mixed: bool = True) -> int:
    """The agreement score on mixed frames, then false alarms in uneven windows (see the module's note)."""
    from tests.test_monitoring_drift import (MIXED_CASES, WINDOW_KINDS, agreement, evidently_drift, mixed_frame,
                                             window)

    warnings.filterwarnings("ignore")
    print(f"{'mixed data set':<28} {'ref rows':>9} {'cur rows':>9} {'seeds':>6} {'columns agree':>14} "
          f"{'data sets agree':>16} {'data sets drifted':>18}")
    total = [0, 0, 0, 0]
    for case, (n_ref, n_cur, shift, mix) in MIXED_CASES.items() if mixed else ():
        cols, tested, sets, drifted = 0, 0, 0, 0
        for k in range(seeds):
            rng = np.random.default_rng(sum(map(ord, case)) + 1000 * (k + 1))
            ref, cur = mixed_frame(rng, n_ref), mixed_frame(rng, n_cur, shift, mix)
            agree, n, wrong = agreement(ref, cur)
            cols, tested = cols + agree, tested + n
            sets += not any(w[0] == "dataset_drift" for w in wrong)
            drifted += detect_drift(ref, cur).dataset_drift
        total = [total[0] + cols, total[1] + tested, total[2] + sets, total[3] + seeds]
        print(f"{case:<28} {n_ref:>9,} {n_cur:>9,} {seeds:>6} {f'{cols}/{tested}':>14} {f'{sets}/{seeds}':>16} "
              f"{drifted:>18}", flush=True)
    if mixed:
        print(f"agreement: {total[0]}/{total[1]} column decisions, {total[2]}/{total[3]} data-set decisions\n")

    runs, evidently_runs = 40 * seeds, 10 * seeds
    print(f"{'unchanged windows':<18} {'runs':>5} {'Lathe: share flagged per test':<58} {'data sets':>9} "
          f"{'Evidently: columns':>18} {'data sets':>9}")
    for n_ref, n_cur in ((500, 5000), (5000, 500), (500, 500)):
        flagged: dict[str, list[bool]] = {}
        sets = 0
        for seed in range(runs):
            rng = np.random.default_rng(seed)
            report = detect_drift(window(rng, n_ref), window(rng, n_cur), WINDOW_KINDS)
            sets += report.dataset_drift
            for c in report.columns:
                flagged.setdefault(c.test, []).append(c.drifted)
        theirs, their_sets = [], 0
        for seed in range(evidently_runs):
            rng = np.random.default_rng(seed)
            result = evidently_drift(window(rng, n_ref), window(rng, n_cur), WINDOW_KINDS)
            theirs += [d for _, _, d in result["columns"].values()]
            their_sets += result["dataset_drift"]
        shares = ", ".join(f"{t} {np.mean(v):.1%}" for t, v in sorted(flagged.items()))
        print(f"{f'{n_ref:,} vs {n_cur:,}':<18} {runs:>5} {shares:<58} {sets / runs:>9.1%} "
              f"{np.mean(theirs):>18.1%} {their_sets / evidently_runs:>9.1%}", flush=True)
    return 0 if total[0] == total[1] and total[2] == total[3] else 1


if __name__ == "__main__":
    raise SystemExit(main())

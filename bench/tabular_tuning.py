"""Benchmark of Optuna tuning against the untuned default on the same split: a LightGBM classifier of a noisy
synthetic label over numeric and categorical columns (a DuckDB table in a temporary workspace), planned as the
`train` job plans it (stratified split, ROC AUC), then fitted once with LightGBM's defaults and tuned for a budget
of trials; prints both held-out scores with bootstrap 95% intervals and the baseline's.

    .venv/bin/python bench/tabular_tuning.py [--rows 4000] [--trials 20] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402


def synthetic(rows: int, seed: int) -> pd.DataFrame:
    """Ten numeric columns (three informative, with an interaction) and a categorical one; 20% of labels flipped."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 10))
    region = rng.choice(["north", "south", "east", "west"], rows)
    logit = 1.5 * x[:, 0] - x[:, 1] + 1.2 * x[:, 2] * x[:, 3] + np.where(region == "east", 1.0, 0.0)
    y = (logit + rng.logistic(size=rows) > 0).astype(int)
    flip = rng.random(rows) < 0.2
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)]).assign(region=region, label=np.where(flip, 1 - y, y))
    return frame.assign(id=np.arange(rows))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    apply_offline_env()
    from catalog.warehouse import connect_writer
    from core.workspace import Workspace
    from runtimes.tabular import estimators
    from runtimes.tabular.data import load, model_inputs
    from runtimes.tabular.metrics import baseline_predictions, bootstrap_ci, score
    from runtimes.tabular.planning import encoded_label, plan_train, split_rows
    from runtimes.tabular.tracking import Run
    from runtimes.tabular.tuning import tune

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.create()
        frame = synthetic(args.rows, args.seed)
        with connect_writer(ws) as con:
            con.register("frame", frame)
            con.execute("CREATE TABLE examples AS SELECT * FROM frame")
        columns = [f"x{i}" for i in range(10)] + ["region"]
        spec = {"label": {"source": "examples", "column": "label"}, "columns": columns, "trials": args.trials,
                "seed": args.seed}
        plan = plan_train(ws, spec)
        data = load(ws, plan.spec)
        x, y = model_inputs(data.frame, plan.features), encoded_label(data.frame["label"], plan.classes)
        parts = split_rows(data.frame, y, plan.spec, plan.task)
        test = parts["test"]

        def held_out(model) -> tuple[float, tuple[float, float]]:
            p = model.predict_proba(x.iloc[test])
            return score("roc_auc", y[test], p), bootstrap_ci("roc_auc", y[test], p, seed=args.seed)

        t = time.perf_counter()
        default = estimators.build("lightgbm", "classification", {}, args.seed, 2, rounds=100)  # LightGBM's defaults
        estimators.fit(default, "lightgbm", x.iloc[parts["train"]], y[parts["train"]])
        default_s = time.perf_counter() - t
        t = time.perf_counter()
        parent = Run(ws, "bench", {})
        tuned = tune(family="lightgbm", task="classification", metric="roc_auc", classes=2,
                     x_fit=x.iloc[parts["fit"]], y_fit=y[parts["fit"]], x_valid=x.iloc[parts["valid"]],
                     y_valid=y[parts["valid"]], trials=args.trials, minutes=None, seed=args.seed, parent=parent,
                     ws=ws, study_name="bench")
        best = estimators.build("lightgbm", "classification", tuned.best_params, args.seed, 2, rounds=tuned.best_rounds)
        estimators.fit(best, "lightgbm", x.iloc[parts["train"]], y[parts["train"]])
        tuned_s = time.perf_counter() - t
        base = score("roc_auc", y[test], baseline_predictions("classification", y[parts["train"]], len(test), 2))
        (d, d_ci), (b, b_ci) = held_out(default), held_out(best)
        print(json.dumps({"rows": args.rows, "test_rows": int(len(test)), "trials": tuned.trials, "pruned": tuned.pruned,
                          "baseline_roc_auc": round(base, 4),
                          "default_roc_auc": round(d, 4), "default_ci95": [round(v, 4) for v in d_ci],
                          "tuned_roc_auc": round(b, 4), "tuned_ci95": [round(v, 4) for v in b_ci],
                          "default_fit_s": round(default_s, 2), "tuning_s": round(tuned_s, 1)}, indent=2))


if __name__ == "__main__":
    main()

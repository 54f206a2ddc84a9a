"""The tuned churn model against LightGBM's untuned default on the same time split of the demo company: the proposal
`lathe train "predict which customers will churn…"` makes, Optuna tuning as the `train` job runs it (TPE, pruning,
early stopping on the validation rows), refit on the training rows, both scored on the same held-out rows.

    python bench/tabular_tuning.py [--scale 0.1] [--trials 20] [--seed 42]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import lightgbm as lgb

    from catalog.workspace_setup import init_workspace
    from core.workspace import Workspace
    from runtimes.tabular import estimators
    from runtimes.tabular.data import load, model_inputs
    from runtimes.tabular.metrics import score
    from runtimes.tabular.planning import encoded_label, split_rows
    from runtimes.tabular.proposal import propose
    from runtimes.tabular.tracking import Run
    from runtimes.tabular.tuning import tune

    ws = Workspace(Path(tempfile.mkdtemp(prefix="lathe-bench-")) / "ws")
    init_workspace(ws, demo=True, scale=args.scale, seed=args.seed)
    spec = propose(ws, {"entity": "customers", "target": "churn", "sources": ["orders", "support_tickets"]}).spec
    data = load(ws, spec)
    x, y = model_inputs(data.frame, data.features), encoded_label(data.frame[spec.label.column], ["0", "1"])
    parts = split_rows(data.frame, y, spec, "classification")
    test = parts["test"]
    print(f"demo scale {args.scale}, seed {args.seed}: {len(y):,} rows ({y.mean():.1%} churned), "
          f"{len(data.features)} features; time split {len(parts['train']):,} train / {len(test):,} held out")

    default = lgb.LGBMClassifier(random_state=spec.seed, verbose=-1).fit(x.iloc[parts["train"]], y[parts["train"]])
    base = score("roc_auc", y[test], default.predict_proba(x.iloc[test]))

    t0 = time.perf_counter()
    parent = Run(ws, "bench", {"lathe.kind": "bench"})
    tuned = tune(family="lightgbm", task="classification", metric="roc_auc", classes=2,
                 x_fit=x.iloc[parts["fit"]], y_fit=y[parts["fit"]], x_valid=x.iloc[parts["valid"]],
                 y_valid=y[parts["valid"]], trials=args.trials, minutes=None, seed=spec.seed, parent=parent, ws=ws,
                 study_name="bench")
    model = estimators.build("lightgbm", "classification", tuned.best_params, spec.seed, 2, rounds=tuned.best_rounds)
    estimators.fit(model, "lightgbm", x.iloc[parts["train"]], y[parts["train"]])
    best = score("roc_auc", y[test], model.predict_proba(x.iloc[test]))
    parent.finish()
    print(f"held-out roc_auc: untuned default {base:.4f}, tuned ({tuned.trials} trials, {tuned.pruned} pruned, "
          f"{time.perf_counter() - t0:.1f} s) {best:.4f}; tuned - default {best - base:+.4f}")


if __name__ == "__main__":
    main()

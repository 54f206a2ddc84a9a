"""Explanations of a trained model with SHAP on a sample of held-out rows: exact tree SHAP (TreeExplainer) for the
tree models that explainer reads, otherwise model-agnostic Kernel SHAP on a smaller sample against a
sample of training rows. Gives the global importance (mean |SHAP| per feature) and a few single predictions taken
apart, as PNGs and as numbers."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtimes.tabular.figures import pyplot, save

TREE_ROWS = 500  # held-out rows the tree explainer reads: exact and fast, the importance settles well before this
AGNOSTIC_ROWS = 40  # rows explained by Kernel SHAP: each costs (features + samples) × background model rows
BACKGROUND_ROWS = 30
KERNEL_SAMPLES = 512  # coalitions per row beyond two per feature: all of them for up to 9 features
INDIVIDUAL = 3  # single predictions taken apart: the highest, the median and the lowest output
SHOWN = 12  # features drawn in the plots


def explain(model: Any, background: Any, rows: Any, *, task: str, classes: list[str] | None, folder: Path,
            ids: list[str] | None = None, seed: int = 0) -> dict[str, Any]:
    """`background`: training rows; `rows`: the held-out rows (model inputs); `ids`: a name for each of `rows`."""
    import shap

    ids = [str(i) for i in ids] if ids is not None else [f"row {i}" for i in range(len(rows))]
    features = [str(c) for c in rows.columns]
    try:
        picked = _sample(len(rows), TREE_ROWS, seed)
        explanation = shap.TreeExplainer(model)(rows.iloc[picked])
        method = f"TreeExplainer (exact tree SHAP) on {len(picked):,} held-out rows"
    except Exception:  # a model or input the tree explainer does not read: explain by permutation instead
        picked = _sample(len(rows), AGNOSTIC_ROWS, seed)
        explanation = _by_kernel(model, background, rows.iloc[picked], task, seed)
        method = (f"KernelExplainer (model-agnostic Kernel SHAP) on {len(picked):,} held-out rows against "
                  f"{min(len(background), BACKGROUND_ROWS):,} training rows")
    values, base = np.asarray(explanation.values, dtype=float), np.asarray(explanation.base_values, dtype=float)
    if values.ndim == 3 and values.shape[2] == 2:  # two outputs for two classes: the positive one says it all
        values, base = values[:, :, 1], base[:, 1]
    importance = np.abs(values).mean(axis=0)
    if importance.ndim == 2:  # one column per class: averaged over the classes
        importance = importance.mean(axis=1)
    order = np.argsort(-importance, kind="stable")
    top = [{"feature": features[i], "mean_abs_shap": float(importance[i])} for i in order]
    if values.ndim == 3:  # each row explained for the class the model predicts for it
        cls = (values.sum(axis=1) + base).argmax(axis=1)
        values, base = values[np.arange(len(values)), :, cls], base[np.arange(len(base)), cls]
    shown = rows.iloc[picked]
    flat = shap.Explanation(values=values, base_values=base, data=_codes(shown).to_numpy(dtype=float),
                            display_data=shown.astype(object).to_numpy(), feature_names=features)
    units = _units(task, classes, np.asarray(explanation.values).ndim == 3 and len(classes or ()) > 2)
    plots, individual = _plots(flat, [ids[i] for i in picked], folder, units)
    return {"method": method, "units": units, "rows": int(len(picked)), "top_features": top, "individual": individual,
            "plots": plots}


def _sample(n: int, at_most: int, seed: int) -> np.ndarray:
    if n <= at_most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, at_most, replace=False))


def _codes(frame: Any) -> Any:
    """Categories as their codes, so maskers and colour scales see numbers."""
    out = frame.copy()
    for c in out.columns:
        if str(out[c].dtype) == "category":
            out[c] = out[c].cat.codes.astype("float64")
    return out.astype("float64")


def _by_kernel(model: Any, background: Any, rows: Any, task: str, seed: int) -> Any:
    """Kernel SHAP on the model's output (log-odds for a classifier, as tree SHAP explains); categories travel as
    codes and are turned back into categories for the model."""
    import pandas as pd
    import shap
    from threadpoolctl import threadpool_limits

    categories = {c: rows[c].cat.categories for c in rows.columns if str(rows[c].dtype) == "category"}
    columns = list(rows.columns)

    def output(a: np.ndarray) -> np.ndarray:
        x = pd.DataFrame(a, columns=columns)
        for c, cats in categories.items():
            x[c] = pd.Categorical.from_codes(np.nan_to_num(x[c], nan=-1).astype(int), cats)
        if task == "regression":
            return np.asarray(model.predict(x), dtype=float)
        p = np.clip(np.asarray(model.predict_proba(x), dtype=float), 1e-6, 1 - 1e-6)
        return np.log(p[:, 1] / p[:, 0]) if p.shape[1] == 2 else np.log(p)

    take = _sample(len(background), BACKGROUND_ROWS, seed)
    explainer = shap.KernelExplainer(output, _codes(background.iloc[take]).to_numpy(dtype=float),
                                     feature_names=columns)
    state = np.random.get_state()  # Kernel SHAP samples coalitions from NumPy's global generator
    np.random.seed(seed)
    try:
        # OpenMP models (scikit-learn's boosting) spin their threads on every small call; one thread is far faster
        with threadpool_limits(1):
            values = explainer.shap_values(_codes(rows).to_numpy(dtype=float), nsamples=2 * len(columns) + KERNEL_SAMPLES,
                                           silent=True)
    finally:
        np.random.set_state(state)
    values = np.stack(values, axis=-1) if isinstance(values, list) else np.asarray(values)
    expected = np.asarray(explainer.expected_value, dtype=float)
    base = np.tile(expected, (len(rows), 1)) if expected.ndim else np.full(len(rows), float(expected))
    return shap.Explanation(values, base_values=base, feature_names=columns)


def _units(task: str, classes: list[str] | None, per_class: bool) -> str:
    if task == "regression":
        return "the label's units"
    if per_class:
        return "log-odds of the predicted class"
    return f"log-odds of `{(classes or ['?', '?'])[-1]}`"


def _plots(flat: Any, ids: list[str], folder: Path, units: str) -> tuple[list[str], list[dict[str, Any]]]:
    import shap

    plt = pyplot()
    written: list[str] = []
    plt.figure()
    shap.plots.bar(flat, max_display=SHOWN, show=False)
    plt.gca().set_title(f"Global importance: mean |SHAP| ({units})", fontsize=10)
    save(plt.gcf(), folder, "shap_importance.png", written)
    plt.figure()
    shap.plots.beeswarm(flat, max_display=SHOWN, show=False, plot_size=(7, 4.5))
    plt.gca().set_title(f"SHAP value of each feature per held-out row ({units})", fontsize=10)
    save(plt.gcf(), folder, "shap_beeswarm.png", written)
    output = flat.values.sum(axis=1) + flat.base_values
    order = np.argsort(output, kind="stable")
    chosen = list(dict.fromkeys([int(order[-1]), int(order[len(order) // 2]), int(order[0])]))[:INDIVIDUAL]
    individual = []
    for rank, i in zip(("highest", "median", "lowest"), chosen):
        plt.figure()
        shap.plots.waterfall(flat[i], max_display=8, show=False)
        plt.gcf().suptitle(f"{ids[i]}: the {rank} output of the sample ({units})", fontsize=10)
        name = f"shap_row_{len(individual) + 1}.png"
        save(plt.gcf(), folder, name, written)
        contributions = np.argsort(-np.abs(flat.values[i]), kind="stable")[:3]
        individual.append({"id": ids[i], "rank": rank, "output": float(output[i]), "base": float(flat.base_values[i]),
                           "plot": name, "top": [{"feature": flat.feature_names[j], "value": str(flat.display_data[i][j]),
                                                  "shap": float(flat.values[i][j])} for j in contributions]})
    return written, individual

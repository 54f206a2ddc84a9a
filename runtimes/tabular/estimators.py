"""The model families: each one's search space (with why those ranges), how a trial's parameters become an
estimator, and how it is fitted with the validation rows (early stopping where the library has it)."""
from __future__ import annotations

from typing import Any

# name → (kind, low, high, log) ; the ranges a few hundred rows to a few million rows tune well within.
SPACES: dict[str, dict[str, tuple[str, float, float, bool]]] = {
    "lightgbm": {"learning_rate": ("float", 0.01, 0.3, True), "num_leaves": ("int", 4, 128, True),
                 "min_child_samples": ("int", 5, 100, True), "feature_fraction": ("float", 0.5, 1.0, False),
                 "lambda_l2": ("float", 1e-3, 10.0, True)},
    "xgboost": {"learning_rate": ("float", 0.01, 0.3, True), "max_depth": ("int", 2, 10, False),
                "min_child_weight": ("float", 0.5, 20.0, True), "subsample": ("float", 0.5, 1.0, False),
                "reg_lambda": ("float", 1e-3, 10.0, True)},
    "sklearn": {"learning_rate": ("float", 0.01, 0.3, True), "max_leaf_nodes": ("int", 4, 128, True),
                "min_samples_leaf": ("int", 5, 100, True), "l2_regularization": ("float", 1e-3, 10.0, True)},
}
WHY = {
    "lightgbm": "LightGBM (gradient-boosted trees): strong on tables without scaling or encoding, fast, takes "
                "categories as they are",
    "xgboost": "XGBoost (gradient-boosted trees), as asked",
    "sklearn": "scikit-learn's histogram gradient boosting, as asked (no extra library)",
}
MAX_ROUNDS = 500  # boosting rounds; early stopping on the validation rows picks fewer


def suggest(trial: Any, family: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (kind, low, high, log) in SPACES[family].items():
        if kind == "int":
            out[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            out[name] = trial.suggest_float(name, low, high, log=log)
    return out


def build(family: str, task: str, params: dict[str, Any], seed: int, classes: int, rounds: int = MAX_ROUNDS) -> Any:
    if family == "lightgbm":
        import lightgbm as lgb

        cls = lgb.LGBMClassifier if task == "classification" else lgb.LGBMRegressor
        return cls(n_estimators=rounds, random_state=seed, verbose=-1, n_jobs=1, **params)
    if family == "xgboost":
        import xgboost as xgb

        cls = xgb.XGBClassifier if task == "classification" else xgb.XGBRegressor
        return cls(n_estimators=rounds, random_state=seed, n_jobs=1, enable_categorical=True, tree_method="hist",
                   early_stopping_rounds=30 if rounds == MAX_ROUNDS else None, **params)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return cls(max_iter=rounds, random_state=seed, categorical_features="from_dtype", early_stopping=True,
               validation_fraction=0.15, **params)


def fit(model: Any, family: str, x: Any, y: Any, x_valid: Any = None, y_valid: Any = None,
        callbacks: list[Any] | None = None) -> Any:
    """Fit, stopping early on the validation rows when given; returns the model."""
    if family == "lightgbm":
        import lightgbm as lgb

        if x_valid is None:
            return model.fit(x, y)
        return model.fit(x, y, eval_X=(x_valid,), eval_y=(y_valid,),
                         callbacks=[lgb.early_stopping(30, verbose=False), *(callbacks or [])])
    if family == "xgboost":
        if x_valid is None:
            return model.fit(x, y, verbose=False)
        return model.fit(x, y, eval_set=[(x_valid, y_valid)], verbose=False)
    return model.fit(x, y)


def rounds_used(model: Any, family: str) -> int:
    """How many boosting rounds early stopping kept: the final model trains that many."""
    if family == "lightgbm":
        return int(model.best_iteration_ or model.n_estimators)
    if family == "xgboost":
        best = getattr(model, "best_iteration", None)
        return int(best + 1) if best is not None else int(model.n_estimators)
    return int(model.n_iter_)

"""Optuna tuning within a budget of trials and/or minutes: TPE sampling, median pruning on the validation metric as
boosting proceeds (LightGBM), early stopping, and each trial an MLflow child run of the job's run."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtimes.tabular import estimators
from runtimes.tabular.metrics import HIGHER_IS_BETTER, score
from runtimes.tabular.tracking import Run

_REPORT_EVERY = 10  # boosting rounds between pruning checks
_WARMUP = 50  # rounds before a trial may be pruned: a slow learning rate starts behind and catches up


@dataclass
class Tuned:
    best_params: dict[str, Any]
    best_value: float
    best_rounds: int
    trials: int
    pruned: int
    study_name: str


def tune(*, family: str, task: str, metric: str, classes: int, x_fit: Any, y_fit: Any, x_valid: Any, y_valid: Any,
         trials: int | None, minutes: float | None, seed: int, parent: Run, ws: Any, study_name: str,
         should_stop: Callable[[], bool] = lambda: False, on_trial: Callable[[int, float | None], None] | None = None
         ) -> Tuned:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, direction="maximize" if HIGHER_IS_BETTER[metric] else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=_WARMUP))

    def objective(trial: optuna.Trial) -> float:
        params = estimators.suggest(trial, family)
        child = Run(ws, f"trial-{trial.number}", {"lathe.trial": str(trial.number)}, parent=parent)
        model = estimators.build(family, task, params, seed, classes)
        try:
            estimators.fit(model, family, x_fit, y_fit, x_valid, y_valid,
                           callbacks=[_pruning(trial, metric, x_valid, y_valid, task)] if family == "lightgbm" else None)
        except optuna.TrialPruned:
            child.log(params=params, metrics={"pruned": 1.0})
            child.finish("KILLED")
            if on_trial:
                on_trial(trial.number, None)
            raise
        value = score(metric, y_valid, _predict(model, task, x_valid))
        rounds = estimators.rounds_used(model, family)
        trial.set_user_attr("rounds", rounds)
        child.log(params={**params, "rounds": rounds}, metrics={f"valid_{metric}": value})
        child.finish()
        if on_trial:
            on_trial(trial.number, value)
        return value

    def stop(study: optuna.Study, _: Any) -> None:
        if should_stop():
            study.stop()

    study.optimize(objective, n_trials=trials, timeout=minutes * 60 if minutes else None, callbacks=[stop],
                   catch=())
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise RuntimeError("no tuning trial completed")
    best = study.best_trial
    return Tuned(best_params=dict(best.params), best_value=float(best.value), best_rounds=int(best.user_attrs["rounds"]),
                 trials=len(study.trials), pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
                 study_name=study_name)


def _predict(model: Any, task: str, x: Any) -> Any:
    return model.predict_proba(x) if task == "classification" else model.predict(x)


def _pruning(trial: Any, metric: str, x_valid: Any, y_valid: Any, task: str) -> Callable[[Any], None]:
    """A LightGBM callback reporting the validation metric every few rounds, pruning when the median rule says so."""
    import optuna

    def callback(env: Any) -> None:
        step = env.iteration + 1
        if step % _REPORT_EVERY:
            return
        raw = env.model.predict(x_valid, num_iteration=step)
        if task == "classification":
            import numpy as np

            raw = np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
        try:
            value = score(metric, y_valid, raw)
        except ValueError:
            return
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at round {step}")

    return callback

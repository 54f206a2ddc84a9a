"""Training a model on tables as a kind of job: at submit, `plan` reads the data and makes the plan the person
approves (task, split, baseline, search space, budget); in the worker, `work` reads the same rows again, tunes with
Optuna (each trial an MLflow child run), refits the best, reports on the held-out rows and registers a version
pending approval with its lineage (data SQL and hash, feature view versions, the study). The report holds SHAP
explanations and bias per sensitive column besides the held-out metrics."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.jobs.kinds import JobKind, Planned
from runtimes.jobs.store import Job, Progress
from runtimes.jobs.worker import Stopped, WorkerRun


def plan(ws: Workspace, spec: Any, principal: Principal | None = None) -> Planned:
    from runtimes.tabular.planning import plan_train

    return planned(plan_train(ws, spec, principal))


def planned(p: Any) -> Planned:
    trials = p.budget.get("trials")
    return Planned(spec=p.spec.model_dump(mode="json", exclude_none=True), plan=p.model_dump(mode="json"),
                   progress=Progress(0, trials, "trials"))


def work(run: WorkerRun) -> None:
    from runtimes.tabular.tracking import Run

    job, store = run.job, run.store
    parent = None
    try:
        p, data = _reload(run)
        run.stop.check()
        if not run.running(f"tuning {p.spec.family} on {p.rows:,} rows"):
            return
        parent = Run(run.ws, job.id, {"lathe.job_id": job.id, "lathe.kind": "train"})
        store.record(job.id, mlflow_run_id=parent.run_id)
        parent.log(params={"family": p.spec.family, "task": p.task, "metric": p.metric, "label": p.spec.label.column,
                           "features": ",".join(p.features), "feature_views": ",".join(p.feature_views),
                           "dataset_hash": p.dataset_hash, "dataset_sql": p.dataset_sql, "split": p.split["kind"],
                           "budget_trials": p.budget.get("trials"), "budget_minutes": p.budget.get("minutes")})
        parent.finish("FINISHED" if _train(run, p, data, parent) else "KILLED")
    except BaseException as e:
        if parent is not None:
            try:
                parent.finish("KILLED" if isinstance(e, Stopped) else "FAILED")
            except Exception:  # the job's status is recorded by the worker; MLflow's is secondary
                pass
        raise


def _reload(run: WorkerRun) -> tuple[Any, Any]:
    """The plan and its rows read again: a job trains on the rows it was approved for."""
    from runtimes.tabular.data import load
    from runtimes.tabular.planning import TrainPlan

    p = TrainPlan.model_validate(run.job.plan)
    data = load(run.ws, p.spec, p.principal)
    if data.content_hash != p.dataset_hash:
        raise UserError(f"the training rows changed since the plan was approved (hash {p.dataset_hash[:12]} → "
                        f"{data.content_hash[:12]}); training now would not be the approved job: plan it again")
    return p, data


def _train(run: WorkerRun, p: Any, data: Any, parent: Any) -> bool:
    """Tune, refit, report and register; False when a stop ended the tuning (nothing registered)."""
    import joblib

    from runtimes.tabular import estimators
    from runtimes.tabular.data import model_inputs
    from runtimes.tabular.evaluation import evaluate, report_metrics
    from runtimes.tabular.planning import encoded_label, split_rows
    from runtimes.tabular.registration import register
    from runtimes.tabular.tuning import tune

    job, store, spec = run.job, run.store, p.spec
    x = model_inputs(data.frame, p.features)
    y = encoded_label(data.frame[spec.label.column], p.classes)
    parts = split_rows(data.frame, y, spec, p.task)
    n_classes = len(p.classes or ())
    done = [0]

    def on_trial(number: int, value: float | None) -> None:
        done[0] += 1
        store.set_progress(job.id, done[0], p.budget.get("trials"),
                           event=f"trial {number}: " + ("pruned" if value is None else f"{p.metric} {value:.4f}"))

    tuned = tune(family=spec.family, task=p.task, metric=p.metric, classes=n_classes,
                 x_fit=x.iloc[parts["fit"]], y_fit=y[parts["fit"]], x_valid=x.iloc[parts["valid"]],
                 y_valid=y[parts["valid"]], trials=p.budget.get("trials"), minutes=p.budget.get("minutes"),
                 seed=spec.seed, parent=parent, ws=run.ws, study_name=f"{job.id}-study",
                 should_stop=lambda: run.stop.requested, on_trial=on_trial)
    if run.stop.requested:
        store.set_status(job.id, "cancelled", f"stopped after {done[0]} trials; nothing was registered; "
                         f"`lathe jobs resume {job.id}` tunes again from the start")
        return False
    model = estimators.build(spec.family, p.task, tuned.best_params, spec.seed, n_classes, rounds=tuned.best_rounds)
    estimators.fit(model, spec.family, x.iloc[parts["train"]], y[parts["train"]])
    folder = run.folder
    tuning = {"study": tuned.study_name, "trials": tuned.trials, "pruned": tuned.pruned,
              f"best_valid_{p.metric}": tuned.best_value, "best_params": tuned.best_params, "rounds": tuned.best_rounds}
    report = evaluate(p, model, x, y, data.frame, parts, tuning, data.sensitive, folder / "report")
    model_dir = folder / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "model.joblib")
    (model_dir / "inputs.json").write_text(json.dumps({
        "features": p.features, "task": p.task, "classes": p.classes, "family": spec.family,
        "categories": {c: [str(v) for v in x[c].cat.categories] for c in x.columns if str(x[c].dtype) == "category"}},
        indent=2), encoding="utf-8")
    parent.log(params={f"best_{k}": v for k, v in tuned.best_params.items()},
               metrics={**report_metrics(report), "trials": tuned.trials, "pruned_trials": tuned.pruned})
    parent.artifacts(folder / "report", "report")
    model_uri = parent.artifacts(model_dir, "model")
    version, lineage = register(run.ws, p, data, job.id, parent, report, model_dir, model_uri)
    store.record(job.id, lineage=lineage, model_version=f"{version.name}/{version.version}",
                 report=str(folder / "report" / "report.json"))
    review = [c for c, f in report["fairness"].items() if f["review"]]
    verdict = "beats" if report["beats_baseline"] else "does NOT beat"
    store.set_status(job.id, "succeeded", f"succeeded: {p.metric} {report['value']:.4f} (95% CI "
                     f"{report['ci95'][0]:.4f}–{report['ci95'][1]:.4f}) {verdict} the baseline's "
                     f"{report['baseline']:.4f}; registered {version.name} version {version.version}, pending approval"
                     + (f"; bias by {', '.join(review)}: review before approving" if review else ""),
                     data={"model_version": f"{version.name}/{version.version}", "report": report})
    return True


def _where(job: Job) -> str:
    return job.progress.describe()


def _resumes_from(job: Job) -> str:
    return "from the start: tuning runs again with the approved plan"


def _kept_because(job: Job) -> str | None:
    return f"registered {job.model_version}, whose model lives in its run folder" if job.model_version else None


KIND = JobKind(name="train", plan=plan, work=work, where=_where, resumes_from=_resumes_from, slots=lambda: 2,
               kept_because=_kept_because)

"""The job process: `python -m runtimes.training.jobs.worker JOB_ID` (workspace from `--workspace` or
`LATHE_HOME`). It validates, prepares the data, builds the trainer and trains, writing events and metrics to
the job store and to MLflow, checkpointing every N steps; on success it evaluates and registers a version.

SIGTERM means "stop soon": a checkpoint is written at the end of the current step and the job ends
`cancelled`, resumable. It never prompts; every failure ends the job `failed` with the reason.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.offline import apply_offline_env
from core.workspace import Workspace
from runtimes.training.jobs.store import Job, JobStore


class _Stop:
    """Set by SIGTERM; read by the training callback at each step's end."""
    requested = False


class _Clock:
    """When this attempt began its compute (building the trainer), to set against the plan's estimate."""
    started = 0.0


class Stopped(Exception):
    """SIGTERM arrived before training began: nothing to checkpoint."""


def job_dir(ws: Workspace, job_id: str) -> Path:
    return ws.root / "runs" / job_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtimes.training.jobs.worker")
    parser.add_argument("job_id")
    parser.add_argument("--workspace", default=None)
    args = parser.parse_args(argv)
    apply_offline_env()
    ws = Workspace.resolve(args.workspace).require()
    signal.signal(signal.SIGTERM, lambda *_: setattr(_Stop, "requested", True))
    store = JobStore(ws)
    try:
        return run_job(ws, store, args.job_id)
    finally:
        from runtimes.training.jobs.launcher import dispatch

        dispatch(ws)  # the next queued job starts when this one ends


def run_job(ws: Workspace, store: JobStore, job_id: str) -> int:
    job = store.get(job_id)
    store.update(job_id, pid=os.getpid())
    tracking = None
    try:
        settings, source, prepared = _validate(ws, store, job)
        _check_stop()
        from runtimes.models.tracking import JobRun

        tracking = JobRun(ws, job_id, job.mlflow_run_id)
        store.update(job_id, mlflow_run_id=tracking.run_id)
        tracking.log_params({"base_model": job.spec.model, "technique": job.spec.technique,
                             "dataset_hash": prepared.content_hash, "dataset_sql": prepared.sql, **settings})
        tracking.log_dataset(prepared)
        _Clock.started = time.perf_counter()
        return _train(ws, store, store.get(job_id), settings, source, prepared, tracking)
    except Stopped:
        store.set_status(job_id, "cancelled", "cancelled before training began")
        _finish(tracking, "KILLED")
        return 0
    except UserError as e:
        store.set_status(job_id, "failed", f"failed: {e}", error=str(e))
        _finish(tracking, "FAILED")
        return 1
    except Exception as e:  # a bug or a crash inside training: the job records it rather than hanging `running`
        store.add_event(job_id, "error", traceback.format_exc()[-4000:])
        store.set_status(job_id, "failed", f"failed: {type(e).__name__}: {e}", error=f"{type(e).__name__}: {e}")
        _finish(tracking, "FAILED")
        return 1


def _validate(ws: Workspace, store: JobStore, job: Job) -> tuple[dict[str, Any], Any, Any]:
    """Everything that can be wrong with the request, found before any compute; on the first attempt the
    automatic configuration resolves every setting, and a resumed job keeps the settings it began with."""
    from runtimes.training.datasets.preparation import DatasetSpec, prepare_dataset
    from runtimes.training.jobs.trainer_factory import resolve_settings
    from runtimes.models.sources import resolve_model
    from runtimes.training.planning import check_judge, plan_prepared

    settings = resolve_settings(job.spec.settings, job.spec.technique)
    source = resolve_model(job.spec.model, ws)
    _check_stop()
    spec = DatasetSpec(table=job.spec.table, sql=job.spec.sql, technique=job.spec.technique,
                       eval_fraction=job.spec.eval_fraction, seed=settings["seed"], mapping=job.spec.mapping)
    prepared = prepare_dataset(ws, spec)
    check_judge(ws, job.spec.technique, settings)  # the judge answers before any compute is spent
    previous = (job.lineage or {}).get("dataset_hash")
    if previous and previous != prepared.content_hash:
        raise UserError("the job's data changed since it began (dataset hash "
                        f"{previous[:12]} → {prepared.content_hash[:12]}); resuming would mix two datasets: "
                        "start a new job")
    folder = job_dir(ws, job.id)
    prepared.save(folder / "data")
    if job.config and job.lineage and "plan" in job.lineage:
        settings, planned = job.config, job.lineage["plan"]  # a resumed job trains exactly as it began
    else:
        plan = plan_prepared(job.spec, source, prepared, measure_speed=True)
        settings = plan.settings
        planned = {"hardware": plan.hardware.describe(), "memory_estimate": plan.estimate.total,
                   "estimated_duration_s": round(plan.duration_s, 1),
                   "measured_duration": plan.measured.to_json() if plan.measured else None,
                   "decisions": {d.field: d.value for d in plan.decisions},
                   "overridden": sorted(d.field for d in plan.decisions if d.overridden)}
        (folder / "plan.txt").write_text(plan.explain() + "\n", encoding="utf-8")
        store.add_event(job.id, "plan", f"planned: {plan.hardware.describe()}; "
                        + ", ".join(f"{k}={settings[k]}" for k in ("method", "micro_batch", "gradient_accumulation",
                                                                  "max_length", "learning_rate") if k in settings),
                        {"settings": settings})
    lineage = {"job_id": job.id, "base_model": job.spec.model, "base_location": source.location,
               "technique": job.spec.technique, "recipe": job.spec.technique, "dataset_hash": prepared.content_hash,
               "dataset_sql": prepared.sql, "dataset": prepared.summary(), "config": settings, "plan": planned}
    store.update(job.id, config=settings, lineage=lineage)
    store.add_event(job.id, "validated", f"data: {prepared.rows_read:,} rows read, {len(prepared.train):,} to train, "
                    f"{len(prepared.eval) if prepared.eval is not None else 0:,} held out; model {source.location}")
    return settings, source, prepared


def _train(ws: Workspace, store: JobStore, job: Job, settings: dict[str, Any], source: Any, prepared: Any,
           tracking: Any) -> int:
    from runtimes.training.jobs.progress import ProgressCallback
    from runtimes.training.jobs.signal_check import DEFAULT_MAX_SHARE, SignalCheck
    from runtimes.training.jobs.trainer_factory import build_trainer
    from runtimes.judging.judge import local_judge_settings

    folder = job_dir(ws, job.id)
    callback = ProgressCallback(store, job.id, job.attempt, tracking, lambda: _Stop.requested)
    signal_check = SignalCheck(float(settings.get("max_degenerate_share", DEFAULT_MAX_SHARE)))
    trainer = build_trainer(job.spec.technique, local_judge_settings(ws, settings), source, prepared,
                            folder / "checkpoints", [callback, signal_check])
    resume = job.checkpoint if job.checkpoint and Path(job.checkpoint).is_dir() else None
    if job.checkpoint and resume is None:
        store.add_event(job.id, "warning", f"checkpoint {job.checkpoint} is gone; training from the start")
    _check_stop()
    store.set_status(job.id, "running", f"running from {Path(resume).name}" if resume else "running",
                     expect=("validating",))
    trainer.train(resume_from_checkpoint=resume)
    if _Stop.requested:
        store.set_status(job.id, "cancelled", f"stopped at step {trainer.state.global_step} with a checkpoint; "
                         "`lathe jobs resume` continues it")
        tracking.finish("KILLED")
        return 0
    if (why := signal_check.verdict()) is not None:
        raise UserError(f"{why}; nothing was registered")
    return _complete(ws, store, store.get(job.id), trainer, prepared, tracking)


def _complete(ws: Workspace, store: JobStore, job: Job, trainer: Any, prepared: Any, tracking: Any) -> int:
    from runtimes.training.evaluation import describe_comparison, write_report
    from runtimes.models.registry import model_name, register_version

    folder = job_dir(ws, job.id)
    model_dir = folder / "model"
    trainer.save_model(str(model_dir))
    trainer.processing_class.save_pretrained(str(model_dir))
    final = {name: value for name, (_, value) in store.latest_metrics(job.id).items()}
    comparison = _compare_with_base(ws, job, trainer, prepared)
    if comparison:
        tracking.log_metrics(trainer.state.global_step, comparison)
        store.add_event(job.id, "evaluation", "base vs tuned: " + "; ".join(describe_comparison(comparison)),
                        comparison)
    timing = _duration_check(store, job, tracking, trainer.state.global_step)
    metrics = {**{k: final[k] for k in ("loss", "grad_norm", "tokens_per_s") if k in final}, **comparison,
               **timing, "steps": trainer.state.global_step}
    curves = [(step, name, value) for _, step, name, value in store.metrics(job.id)]
    report = write_report(folder / "report", curves, metrics, comparison)
    if report.get("plot_note"):
        store.add_event(job.id, "warning", report["plot_note"])
    tracking.client.log_artifacts(tracking.run_id, str(folder / "report"), "report")
    model_uri = tracking.log_model(model_dir)
    lineage = {**(job.lineage or {}), "metrics": metrics}
    version = register_version(ws, job.spec.name or model_name(job.spec.model, job.spec.technique), str(model_dir),
                               tracking.run_id, {**lineage, "model_uri": model_uri})
    store.update(job.id, lineage=lineage, model_version=f"{version.name}/{version.version}")
    tracking.finish("FINISHED")
    store.set_status(job.id, "succeeded", f"succeeded: registered {version.name} version {version.version} "
                     "(pending approval)")
    return 0


def _duration_check(store: JobStore, job: Job, tracking: Any, step: int) -> dict[str, float]:
    """Estimated vs actual seconds of training and evaluation, as an event and in MLflow; a resumed attempt ran
    only part of the job, so only a first attempt is compared."""
    planned = (job.lineage or {}).get("plan") or {}
    estimated = planned.get("estimated_duration_s")
    if not estimated or job.attempt > 1 or not _Clock.started:
        return {}
    actual = round(time.perf_counter() - _Clock.started, 2)  # the ratio is of the figures shown, so they agree
    out = {"duration_estimated_s": float(estimated), "duration_actual_s": actual,
           "duration_ratio": round(actual / float(estimated), 3)}
    tracking.log_metrics(step, out)
    store.add_event(job.id, "duration", f"training and evaluation took {actual:.0f} s; the plan estimated "
                    f"{float(estimated):.0f} s (actual/estimated {out['duration_ratio']:.2f})", out)
    return out


def _compare_with_base(ws: Workspace, job: Job, trainer: Any, prepared: Any) -> dict[str, float]:
    """Base vs tuned on held-out rows with the technique's own figures (see `evaluation.compare`)."""
    from runtimes.training.evaluation import compare
    from runtimes.training.jobs.trainer_factory import recipe_config
    from runtimes.models.sources import load_model, resolve_model

    config = recipe_config(job.spec.technique, job.config or {})
    base = load_model(resolve_model(job.spec.model, ws))
    return compare(job.spec.technique, config, base, trainer.model, trainer.processing_class, prepared,
                   judge=getattr(trainer, "lathe_judge", None))


def _check_stop() -> None:
    if _Stop.requested:
        raise Stopped


def _finish(tracking: Any, status: str) -> None:
    if tracking is not None:
        try:
            tracking.finish(status)
        except Exception:  # the job's own status is already recorded; MLflow's is secondary
            pass


if __name__ == "__main__":
    sys.exit(main())

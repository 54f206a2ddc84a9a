"""Fine-tuning as a kind of job: at submit, `plan` makes the whole plan (automatic configuration, measured warm-up)
that the person approves and the job stores; in the worker, `work` prepares the data, builds the trainer with the
stored settings and trains, checkpointing, then evaluates and registers a version.

The worker never plans again: the settings it trains with are the approved plan's, whatever a new plan would say.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.jobs.kinds import JobKind, Planned
from runtimes.jobs.store import Job, Progress
from runtimes.jobs.worker import Stopped, WorkerRun
from runtimes.training.jobs.preemption_notice import GraceWatch, end_stopped, grace_s
from runtimes.training.jobs.spec import JobSpec


def plan(ws: Workspace, spec: JobSpec | dict[str, Any], principal: Principal | None = None) -> Planned:
    """The approved plan of a request; raises `UserError` for anything that cannot train, before any job exists."""
    from runtimes.training.planning import plan_finetune

    spec = spec if isinstance(spec, JobSpec) else JobSpec.parse(spec)
    return planned(plan_finetune(ws, spec))


def planned(p: Any) -> Planned:
    """A `FinetunePlan` as the job stores it: the settings it trains with, the data it was made for, the estimate."""
    max_steps = int(p.settings.get("max_steps") or -1)
    return Planned(spec=p.spec.model_dump(mode="json", exclude_none=True), progress=Progress(
        0, max_steps if max_steps > 0 else p.training.steps, "steps"), plan={
        "settings": p.settings, "dataset_hash": p.dataset["content_hash"], "explanation": p.explain(),
        "hardware": p.hardware.describe(), "memory_estimate": p.estimate.total,
        "estimated_duration_s": round(p.duration_s, 1),
        "measured_duration": p.measured.to_json() if p.measured else None,
        "decisions": {d.field: d.value for d in p.decisions},
        "overridden": sorted(d.field for d in p.decisions if d.overridden)})


def work(run: WorkerRun) -> None:
    from runtimes.models.tracking import JobRun

    job, store = run.job, run.store
    tracking = None
    try:
        source, prepared = _validate(run)
        run.stop.check()
        tracking = JobRun(run.ws, job.id, job.mlflow_run_id)
        store.record(job.id, mlflow_run_id=tracking.run_id)
        settings = dict(job.plan["settings"])
        tracking.log_params({"base_model": job.spec["model"], "technique": _spec(job).technique,
                             "dataset_hash": prepared.content_hash, "dataset_sql": prepared.sql, **settings})
        tracking.log_dataset(prepared)
        train = _train_ranks if int(settings.get("processes", 1)) * int(settings.get("nodes", 1)) > 1 else _train
        train(run, store.get(job.id), settings, source, prepared, tracking, started=time.perf_counter())
    except BaseException as e:
        _finish(tracking, "KILLED" if isinstance(e, Stopped) else "FAILED")
        raise


def _spec(job: Job) -> JobSpec:
    return JobSpec.model_validate(job.spec)


def _validate(run: WorkerRun) -> tuple[Any, Any]:
    """The data read again and checked against the plan's: a job trains on the rows it was approved for."""
    from runtimes.models.sources import resolve_model
    from runtimes.training.datasets.preparation import DatasetSpec, prepare_dataset
    from runtimes.training.planning import check_judge

    job, store = run.job, run.store
    spec, settings = _spec(job), job.plan["settings"]
    source = resolve_model(spec.model, run.ws)
    run.stop.check()
    prepared = prepare_dataset(run.ws, DatasetSpec(table=spec.table, sql=spec.sql, technique=spec.technique,
                                                   eval_fraction=spec.eval_fraction, seed=settings["seed"],
                                                   mapping=spec.mapping))
    if job.attempt > 1:  # the plan probed the judge at submit; a resumed attempt, maybe much later, asks again
        check_judge(run.ws, spec.technique, settings)
    approved = job.plan["dataset_hash"]
    if prepared.content_hash != approved:
        raise UserError(f"the job's data changed since its plan was approved (dataset hash {approved[:12]} → "
                        f"{prepared.content_hash[:12]}); training on it would not be the approved plan: start a "
                        "new job")
    prepared.save(run.folder / "data")
    if job.attempt == 1:
        (run.folder / "plan.txt").write_text(job.plan["explanation"] + "\n", encoding="utf-8")
        store.add_event(job.id, "plan", "the approved plan: " + ", ".join(
            f"{k}={settings[k]}" for k in ("method", "micro_batch", "gradient_accumulation", "max_length",
                                           "learning_rate") if k in settings), {"settings": settings})
    planned = {k: job.plan[k] for k in ("hardware", "memory_estimate", "estimated_duration_s", "measured_duration",
                                        "decisions", "overridden")}
    store.record(job.id, lineage={
        "job_id": job.id, "base_model": spec.model, "base_location": source.location, "technique": spec.technique,
        "recipe": spec.technique, "dataset_hash": prepared.content_hash, "dataset_sql": prepared.sql,
        "dataset": prepared.summary(), "config": settings, "plan": planned})
    store.add_event(job.id, "validated", f"data: {prepared.rows_read:,} rows read, {len(prepared.train):,} to train, "
                    f"{len(prepared.eval) if prepared.eval is not None else 0:,} held out; model {source.location}")
    return source, prepared


def _train(run: WorkerRun, job: Job, settings: dict[str, Any], source: Any, prepared: Any, tracking: Any,
           started: float) -> None:
    from runtimes.judging.judge import local_judge_settings
    from runtimes.training.jobs.progress import ProgressCallback
    from runtimes.training.jobs.signal_check import DEFAULT_MAX_SHARE, SignalCheck
    from runtimes.training.jobs.trainer_factory import build_trainer

    store = run.store
    callback = ProgressCallback(store, job.id, job.attempt, tracking, lambda: run.stop.requested)
    signal_check = SignalCheck(float(settings.get("max_degenerate_share", DEFAULT_MAX_SHARE)))
    trainer = build_trainer(_spec(job).technique, local_judge_settings(run.ws, settings), source, prepared,
                            run.folder / "checkpoints", [callback, signal_check])
    resume = job.checkpoint if job.checkpoint and Path(job.checkpoint).is_dir() else None
    if job.checkpoint and resume is None:
        store.add_event(job.id, "warning", f"checkpoint {job.checkpoint} is gone; training from the start")
    run.stop.check()
    if not run.running(f"running from {Path(resume).name}" if resume else "running"):
        return
    with GraceWatch(run):
        trainer.train(resume_from_checkpoint=resume)
    if run.stop.requested:
        end_stopped(run, tracking, trainer.state.global_step)
        return
    if (why := signal_check.verdict()) is not None:
        raise UserError(f"{why}; nothing was registered")
    _complete(run, store.get(job.id), _saved(trainer, run.folder / "model"), prepared, tracking, started)


@dataclass(frozen=True)
class Trained:
    """What evaluation and registration need of a finished training, in this process or from its ranks."""
    model: Any
    tokenizer: Any
    step: int
    judge: Any = None


def _train_ranks(run: WorkerRun, job: Job, settings: dict[str, Any], source: Any, prepared: Any, tracking: Any,
                 started: float) -> None:
    """Several ranks under torchrun, children of this worker; this process then evaluates and registers the model
    rank 0 saved, as after training in one process."""
    from runtimes.models.sources import load_tokenizer
    from runtimes.training.jobs.rank_launch import launch_ranks
    from runtimes.training.jobs.ray_launch import launch_on_ray, runs_on_ray

    store = run.store
    run.stop.check()
    nodes = int(settings.get("nodes", 1))
    if not run.running(f"running {settings['processes'] * nodes} ranks ({settings.get('strategy')})"
                       + (f" from {Path(job.checkpoint).name}" if job.checkpoint else "")):
        return
    if settings.get("recovery") == "peer":  # torchft replica groups: a lost rank is healed from a peer
        from runtimes.training.jobs.peer_recovery import launch_replicas as launch_ranks
    with GraceWatch(run):
        report = (launch_on_ray(run, prepared, int(settings["processes"]), nodes) if runs_on_ray(run.ws, settings)
                  else launch_ranks(run, prepared, int(settings["processes"]), int(grace_s(run))))
    if report["stopped"]:
        end_stopped(run, tracking, int(report["step"]),  # peer ranks share one state: rank 0 saves it
                    "" if settings.get("recovery") == "peer" else " on every rank")
        return
    if report["verdict"] is not None:
        raise UserError(f"{report['verdict']}; nothing was registered")
    tokenizer, _ = load_tokenizer(source)
    model = _load_saved(source, run.folder / "model")
    _complete(run, store.get(job.id), Trained(model, tokenizer, int(report["step"]), _judge(run, job, settings)),
              prepared, tracking, started)


def _judge(run: WorkerRun, job: Job, settings: dict[str, Any]) -> Any:
    """RLAIF's judge for evaluation in this one process (the ranks' own judges ended with them), or None."""
    if _spec(job).technique != "rlaif":
        return None
    from runtimes.judging.judge import local_judge_settings
    from runtimes.training.jobs.trainer_factory import recipe_config
    from runtimes.training.recipes.rlaif_recipe import build_judge

    config = recipe_config("rlaif", local_judge_settings(run.ws, settings))
    return build_judge(config, run.folder / "checkpoints", ranks=1)


def _load_saved(source: Any, model_dir: Path) -> Any:
    """The model the ranks saved: a whole model, or LoRA adapters on the base."""
    from runtimes.models.sources import load_model

    if (model_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        return PeftModel.from_pretrained(load_model(source), str(model_dir))
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(model_dir))


def _saved(trainer: Any, model_dir: Path) -> Trained:
    trainer.save_model(str(model_dir))
    trainer.processing_class.save_pretrained(str(model_dir))
    return Trained(trainer.model, trainer.processing_class, trainer.state.global_step,
                   getattr(trainer, "lathe_judge", None))


def _complete(run: WorkerRun, job: Job, trained: Trained, prepared: Any, tracking: Any, started: float) -> None:
    """Evaluate, report and register the model saved in the job's `model` folder."""
    from runtimes.models.registry import model_name, register_version
    from runtimes.training.evaluation import describe_comparison, write_report

    store, spec = run.store, _spec(job)
    model_dir = run.folder / "model"
    final = {name: value for name, (_, value) in store.latest_metrics(job.id).items()}
    comparison = _compare_with_base(run.ws, job, trained, prepared)
    if comparison:
        tracking.log_metrics(trained.step, comparison)
        store.add_event(job.id, "evaluation", "base vs tuned: " + "; ".join(describe_comparison(comparison)),
                        comparison)
    timing = _duration_check(run, job, tracking, trained.step, started)
    metrics = {**{k: final[k] for k in ("loss", "grad_norm", "tokens_per_s") if k in final}, **comparison,
               **timing, "steps": trained.step}
    curves = [(step, name, value) for _, step, name, value in store.metrics(job.id)]
    report = write_report(run.folder / "report", curves, metrics, comparison)
    if report.get("plot_note"):
        store.add_event(job.id, "warning", report["plot_note"])
    tracking.client.log_artifacts(tracking.run_id, str(run.folder / "report"), "report")
    model_uri = tracking.log_model(model_dir)
    lineage = {**(job.lineage or {}), "metrics": metrics}
    version = register_version(run.ws, spec.name or model_name(spec.model, spec.technique), str(model_dir),
                               tracking.run_id, {**lineage, "model_uri": model_uri})
    store.record(job.id, lineage=lineage, model_version=f"{version.name}/{version.version}")
    tracking.finish("FINISHED")
    store.set_status(job.id, "succeeded", f"succeeded: registered {version.name} version {version.version} "
                     "(pending approval)")


def _duration_check(run: WorkerRun, job: Job, tracking: Any, step: int, started: float) -> dict[str, float]:
    """Estimated vs actual seconds of training and evaluation, as an event and in MLflow; a resumed attempt ran
    only part of the job, so only a first attempt is compared."""
    estimated = job.plan.get("estimated_duration_s")
    if not estimated or job.attempt > 1:
        return {}
    actual = round(time.perf_counter() - started, 2)  # the ratio is of the figures shown, so they agree
    out = {"duration_estimated_s": float(estimated), "duration_actual_s": actual,
           "duration_ratio": round(actual / float(estimated), 3)}
    tracking.log_metrics(step, out)
    run.store.add_event(job.id, "duration", f"training and evaluation took {actual:.0f} s; the plan estimated "
                        f"{float(estimated):.0f} s (actual/estimated {out['duration_ratio']:.2f})", out)
    return out


def _compare_with_base(ws: Workspace, job: Job, trained: Trained, prepared: Any) -> dict[str, float]:
    """Base vs tuned on held-out rows with the technique's own figures (see `evaluation.compare`)."""
    from runtimes.models.sources import load_model, resolve_model
    from runtimes.training.evaluation import compare
    from runtimes.training.jobs.trainer_factory import recipe_config

    spec = _spec(job)
    config = recipe_config(spec.technique, job.config or {})
    base = load_model(resolve_model(spec.model, ws))
    return compare(spec.technique, config, base, trained.model, trained.tokenizer, prepared, judge=trained.judge)


def _finish(tracking: Any, status: str) -> None:
    if tracking is not None:
        try:
            tracking.finish(status)
        except Exception:  # the job's own status is already recorded; MLflow's is secondary
            pass


def _where(job: Job) -> str:
    return f"step {job.step}"


def _resumes_from(job: Job) -> str:
    return f"from {Path(job.checkpoint).name}" if job.checkpoint else "from the start (no checkpoint yet)"


def _kept_because(job: Job) -> str | None:
    return (f"registered {job.model_version}, whose weights live in its run folder" if job.model_version else None)


def _slots() -> int:
    from runtimes.jobs.lifecycle import gpu_slots

    return gpu_slots()


KIND = JobKind(name="finetune", plan=plan, work=work, where=_where, resumes_from=_resumes_from, slots=_slots,
               kept_because=_kept_because)

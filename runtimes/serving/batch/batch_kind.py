"""Batch inference as a kind of job: the approved `BatchPlan` is stored at submit; the worker streams the source from
the warehouse into the job's spool in chunks (checking it is still the approved rows), skips the rows already
answered, generates the rest in micro-batches (one batched `generate` each, committed before the next), captures
them as traffic (route `batch`) and, when every row is done, writes the predictions table.

A stop (SIGTERM) ends the job after the micro-batch in flight, `cancelled`, resumable; the predictions made are kept.
"""
from __future__ import annotations

import datetime as dt
import contextlib
import itertools
import time
from typing import Any

from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.jobs.kinds import JobKind, Planned
from runtimes.jobs.store import Job, Progress
from runtimes.jobs.worker import WorkerRun
from runtimes.serving.batch.source import BatchRow
from runtimes.serving.batch.spool import BatchSpool, Prediction
from runtimes.serving.batch.transform import BatchPlan, BatchSpec, plan_batch
from runtimes.serving.engines.context_window import ContextTooLong, check_fits

_PROGRESS_EVERY_S = 2.0


def plan(ws: Workspace, spec: BatchSpec | dict[str, Any], principal: Principal | None = None) -> Planned:
    return planned(plan_batch(ws, spec, principal))


def planned(p: BatchPlan) -> Planned:
    return Planned(spec=p.spec.model_dump(mode="json", exclude_none=True), plan=p.model_dump(mode="json"),
                   progress=Progress(0, p.rows, "rows"))


def spool_of(ws: Workspace, job_id: str) -> BatchSpool:
    from runtimes.jobs.lifecycle import job_dir

    return BatchSpool(job_dir(ws, job_id) / "predictions.sqlite")


def work(run: WorkerRun) -> None:
    from runtimes.serving.batch.output import publish, when_free

    job, store = run.job, run.store
    plan = BatchPlan.model_validate(job.plan)

    def waiting(why: str) -> None:
        store.add_event(job.id, "waiting", f"the warehouse is busy ({why}); waiting up to "
                        f"{plan.spec.publish_wait_s:g} s")

    spool = spool_of(run.ws, job.id)
    _capture(run.ws, job.id, spool)  # what a crash left spooled but not yet captured
    total = when_free(lambda: _load_source(run.ws, plan, spool), wait_s=plan.spec.publish_wait_s, on_wait=waiting,
                      gave_up=f"`lathe jobs resume {job.id}` tries again")
    done = spool.done_count()
    store.set_progress(job.id, done, total)
    run.stop.check()
    if not run.running(f"running attempt {job.attempt}: {done:,} of {total:,} rows already done, "
                       f"{total - done:,} to go", attempt=job.attempt, skipped=done, todo=total - done):
        return  # cancelled while it started
    generated = _generate(run, plan, spool, done=done, total=total)
    store.add_event(job.id, "generated", f"attempt {job.attempt} generated {generated:,} rows",
                    {"attempt": job.attempt, "generated": generated, "skipped": done})
    if run.stop.requested:
        n = spool.done_count()
        store.set_status(job.id, "cancelled", f"stopped with {n:,} of {total:,} rows done; `lathe jobs resume "
                         f"{job.id}` continues", data={"rows_done": n})
        return
    table = publish(run.ws, job.id, plan, spool.chunks, wait_s=plan.spec.publish_wait_s, on_wait=waiting)
    store.record(job.id, output_table=table.name)
    store.set_progress(job.id, table.row_count, total)
    store.set_status(job.id, "succeeded", f"succeeded: {table.row_count:,} predictions in table `{table.name}`",
                     data={"table": table.name, "rows": table.row_count})


def _load_source(ws: Workspace, plan: BatchPlan, spool: BatchSpool) -> int:
    """Stream the source into the spool chunk by chunk; it must still be the rows the plan was approved for."""
    from runtimes.serving.batch.source import scan_rows, stream_rows

    with contextlib.closing(stream_rows(ws, plan.source_statement, plan.principal)) as chunks:
        first = next(chunks, None)
        for column in (plan.prompt_column, plan.key_column):
            if column and (first is None or column not in first.columns):
                raise UserError(f"the batch's source no longer has column `{column}`; start a new batch")
        spool.reset_source()
        scan = scan_rows(itertools.chain([first], chunks) if first else [], plan.prompt_column, plan.key_column,
                         plan.format, plan.spec.system_prompt, on_rows=spool.add_source)
    if scan.content_hash != plan.content_hash:
        raise UserError(f"the batch's source changed since its plan was approved (rows hash {plan.content_hash[:12]} "
                        f"→ {scan.content_hash[:12]}); running it would not be the approved batch: start a new batch")
    return scan.rows


def _generate(run: WorkerRun, plan: BatchPlan, spool: BatchSpool, *, done: int, total: int) -> int:
    """Answer the spool's rows still to do in micro-batches; returns the number of rows the model generated."""
    from runtimes.serving.engines.pool import context_length
    from runtimes.serving.engines.transformers_engine import ChatMessage, Engine, Sampling

    job, store = run.job, run.store
    todo = spool.todo(plan.spec.micro_batch)
    if not todo:
        return 0
    engine = Engine(plan.base)
    engine.register(plan.served())
    store.add_event(job.id, "model", f"model `{plan.model_id}` loaded in {engine.load_seconds:.1f} s on "
                    f"{engine.device}", {"load_seconds": engine.load_seconds, "device": engine.device})
    sampling = Sampling(max_new_tokens=plan.spec.max_new_tokens, temperature=plan.spec.temperature,
                        top_p=plan.spec.top_p, seed=plan.spec.seed)
    generated, last_event = 0, time.monotonic()
    while todo:
        asked: list[tuple[BatchRow, Any]] = []
        too_long: dict[str, ContextTooLong] = {}
        for row in todo:
            if not row.prompt:
                continue
            try:
                if row.messages is not None:
                    ids = engine.prompt_ids(plan.model_id, messages=[ChatMessage(**m) for m in row.messages])
                else:
                    ids = engine.prompt_ids(plan.model_id, prompt=row.prompt)
            except UserError as e:
                raise UserError(f"row `{row.key}`: {e}") from None
            try:  # a row past the context window is not answered (the model would write garbage); the rest are
                check_fits(context_length(engine), int(ids.shape[1]), plan.spec.max_new_tokens,
                           "messages" if row.messages is not None else "prompt")
            except ContextTooLong as e:
                too_long[row.key] = e
                continue
            asked.append((row, ids))
        # One generate call per micro-batch: the model answers its rows together.
        replies = dict(zip([r.key for r, _ in asked],
                           engine.generate_batch(plan.model_id, [ids for _, ids in asked], sampling)))
        if too_long:  # one event per micro-batch, however many of its rows are too long
            key, e = next(iter(too_long.items()))
            store.add_event(job.id, "row_error", f"{len(too_long)} row(s) not answered (finish_reason `error`); "
                            f"row `{key}`: {e}", {"rows": list(too_long), "error": "context_length_exceeded",
                                                   "context_length": e.limit})
        spool.commit([_prediction(row, plan, job.attempt, too_long.get(row.key) or replies.get(row.key))
                      for row in todo])
        _capture(run.ws, job.id, spool)
        generated += len(asked)
        done += len(todo)
        due = time.monotonic() - last_event >= _PROGRESS_EVERY_S or done == total
        store.set_progress(job.id, done, total, event=f"{done:,} of {total:,} rows" if due else None)
        if due:
            last_event = time.monotonic()
        if run.stop.requested:
            break
        todo = spool.todo(plan.spec.micro_batch)
    return generated


def _prediction(row: BatchRow, plan: BatchPlan, attempt: int, gen: Any) -> Prediction:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    key_value = row.key if plan.key_column else None
    if gen is None:
        return Prediction(row.key, key_value, row.prompt, None, "skipped", 0, 0, 0.0, plan.model_id, attempt, now)
    if isinstance(gen, ContextTooLong):
        return Prediction(row.key, key_value, row.prompt, None, "error", gen.prompt_tokens, 0, 0.0, plan.model_id,
                          attempt, now)
    return Prediction(row.key, key_value, row.prompt, gen.text, gen.finish_reason, gen.prompt_tokens,
                      gen.completion_tokens, float(gen.latency_ms), plan.model_id, attempt, now)


def _capture(ws: Workspace, job_id: str, spool: BatchSpool) -> None:
    """Spooled predictions into the traffic capture (idempotent on the request id), then marked captured."""
    from runtimes.monitoring.traffic import TrafficRecord, record

    while pending := spool.unrecorded():
        # a row with no prompt, or one refused for its length, was not answered
        answered = [p for p in pending if p.finish_reason not in ("skipped", "error")]
        record(ws, [TrafficRecord(request_id=f"{job_id}:{p.row_key}", endpoint="batch", model=p.model,
                                  ts=dt.datetime.fromisoformat(p.created_at), route="batch", prompt=p.prompt,
                                  response=p.prediction or "", prompt_tokens=p.prompt_tokens,
                                  completion_tokens=p.completion_tokens, latency_ms=p.latency_ms,
                                  metadata={"batch_job": job_id, "row_key": p.row_key}) for p in answered])
        spool.mark_recorded([p.row_key for p in pending])


def _where(job: Job) -> str:
    return f"{job.rows_done:,} of {job.rows_total:,} rows done"


def _resumes_from(job: Job) -> str:
    return f"keeping the {job.rows_done:,} rows done" if job.rows_done else "from the first row"


KIND = JobKind(name="batch", plan=plan, work=work, where=_where, resumes_from=_resumes_from)

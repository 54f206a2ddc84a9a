"""The batch process: `python -m runtimes.serving.batch.worker JOB_ID --workspace WS`. It reads the rows again,
skips those its spool already holds, generates the rest in micro-batches (one batched `generate` each, committed
before the next begins), captures them as traffic (route `batch`) and, when every row is done, writes the
predictions table.

SIGTERM means "stop after this micro-batch": the job ends `cancelled`, resumable. It never prompts; a failure ends
the job `failed` with the reason, the predictions made so far kept.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

from core.errors import UserError
from core.offline import apply_offline_env
from core.workspace import Workspace
from runtimes.serving.batch.transform import BatchPlan, job_dir
from runtimes.serving.batch.source import BatchRow
from runtimes.serving.batch.spool import BatchSpool, Prediction
from runtimes.serving.batch.store import ACTIVE, BatchJob, BatchStore

_PROGRESS_EVERY_S = 2.0


class _Stop:
    """Set by SIGTERM; read after each micro-batch."""
    requested = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtimes.serving.batch.worker")
    parser.add_argument("job_id")
    parser.add_argument("--workspace", default=None)
    args = parser.parse_args(argv)
    apply_offline_env()
    ws = Workspace.resolve(args.workspace).require()
    signal.signal(signal.SIGTERM, lambda *_: setattr(_Stop, "requested", True))
    return run_job(ws, BatchStore(ws), args.job_id)


def run_job(ws: Workspace, store: BatchStore, job_id: str) -> int:
    store.get(job_id)
    lock = _sole_worker(job_dir(ws, job_id) / "worker.lock")
    if isinstance(lock, int):  # two starts raced (a resume and a recovery): the first one runs the job
        if lock > 0:
            store.update(job_id, pid=lock)
        print(f"{job_id} is already run by process {lock}; this one stops", flush=True)
        return 0
    job = store.start_attempt(job_id, os.getpid())
    if job.stop_requested:
        store.set_status(job_id, "cancelled", "cancelled before it began")
        return 0
    try:
        return _run(ws, store, job, BatchPlan.model_validate(job.plan))
    except UserError as e:
        store.set_status(job_id, "failed", f"failed: {e}", error=str(e))
        return 1
    except Exception as e:  # a bug or a crash in the model: recorded rather than left `running`
        store.add_event(job_id, "error", traceback.format_exc()[-4000:])
        store.set_status(job_id, "failed", f"failed: {type(e).__name__}: {e}", error=f"{type(e).__name__}: {e}")
        return 1


def _run(ws: Workspace, store: BatchStore, job: BatchJob, plan: BatchPlan) -> int:
    from runtimes.serving.batch.output import publish, when_free
    from runtimes.serving.batch.source import batch_rows, content_hash, read_rows

    def waiting(why: str) -> None:
        store.add_event(job.id, "waiting", f"the warehouse is busy ({why}); waiting up to "
                        f"{plan.spec.publish_wait_s:g} s")

    source = when_free(lambda: read_rows(ws, plan.source_statement, plan.principal), wait_s=plan.spec.publish_wait_s,
                       on_wait=waiting, gave_up=f"`lathe batch resume {job.id}` tries again")
    for column in (plan.prompt_column, plan.key_column):
        if column and column not in source.columns:
            raise UserError(f"the batch's source no longer has column `{column}`; start a new batch")
    rows = batch_rows(source, plan.prompt_column, plan.key_column, plan.format, plan.spec.system_prompt)
    digest = content_hash(rows)
    if job.source_hash and job.source_hash != digest:
        raise UserError(f"the batch's source changed since the batch began (rows hash {job.source_hash[:12]} → "
                        f"{digest[:12]}); resuming would mix two versions of the data: start a new batch")
    spool = BatchSpool(job_dir(ws, job.id) / "predictions.sqlite")
    _capture(ws, job.id, spool)  # what a crash left spooled but not yet captured
    done = spool.done_keys()
    todo = [r for r in rows if r.key not in done]
    store.update(job.id, source_hash=digest, rows_total=len(rows), rows_done=len(rows) - len(todo))
    if _Stop.requested:
        store.set_status(job.id, "cancelled", "cancelled before it began")
        return 0
    if not store.set_status(job.id, "running", f"running attempt {job.attempt}: {len(rows) - len(todo):,} of "
                            f"{len(rows):,} rows already done, {len(todo):,} to go", expect=("queued", *ACTIVE),
                            data={"attempt": job.attempt, "skipped": len(rows) - len(todo), "todo": len(todo)}):
        return 0  # cancelled while it started
    generated = _generate(ws, store, job, plan, spool, todo, done=len(rows) - len(todo), total=len(rows))
    store.add_event(job.id, "generated", f"attempt {job.attempt} generated {generated:,} rows",
                    {"attempt": job.attempt, "generated": generated, "skipped": len(rows) - len(todo)})
    if _Stop.requested:
        n = len(spool.done_keys())
        store.set_status(job.id, "cancelled", f"stopped with {n:,} of {len(rows):,} rows done; `lathe batch resume "
                         f"{job.id}` continues", data={"rows_done": n})
        return 0
    predictions = spool.all()
    table = publish(ws, job.id, plan, predictions, wait_s=plan.spec.publish_wait_s, on_wait=waiting)
    store.update(job.id, output_table=table.name, rows_done=len(predictions))
    store.set_status(job.id, "succeeded", f"succeeded: {len(predictions):,} predictions in table `{table.name}`",
                     data={"table": table.name, "rows": len(predictions)})
    return 0


def _generate(ws: Workspace, store: BatchStore, job: BatchJob, plan: BatchPlan, spool: BatchSpool,
              todo: list[BatchRow], *, done: int, total: int) -> int:
    """Answer `todo` in micro-batches; returns the number of rows the model generated."""
    if not todo:
        return 0
    from runtimes.serving.engines.transformers_engine import ChatMessage, Engine, Sampling

    engine = Engine(plan.base)
    engine.register(plan.served())
    store.add_event(job.id, "model", f"model `{plan.model_id}` loaded in {engine.load_seconds:.1f} s on "
                    f"{engine.device}", {"load_seconds": engine.load_seconds, "device": engine.device})
    sampling = Sampling(max_new_tokens=plan.spec.max_new_tokens, temperature=plan.spec.temperature,
                        top_p=plan.spec.top_p, seed=plan.spec.seed)
    generated, last_event = 0, time.monotonic()
    size = plan.spec.micro_batch
    for start in range(0, len(todo), size):
        rows = todo[start:start + size]
        asked: list[tuple[BatchRow, Any]] = []
        for row in rows:
            if not row.prompt:
                continue
            try:
                if row.messages is not None:
                    ids = engine.prompt_ids(plan.model_id, messages=[ChatMessage(**m) for m in row.messages])
                else:
                    ids = engine.prompt_ids(plan.model_id, prompt=row.prompt)
            except UserError as e:
                raise UserError(f"row `{row.key}`: {e}") from None
            asked.append((row, ids))
        # One generate call per micro-batch: the model answers its rows together.
        replies = dict(zip([r.key for r, _ in asked],
                           engine.generate_batch(plan.model_id, [ids for _, ids in asked], sampling)))
        chunk = [_prediction(row, plan, job.attempt, replies.get(row.key)) for row in rows]
        generated += len(asked)
        spool.commit(chunk)
        _capture(ws, job.id, spool)
        done += len(chunk)
        store.update(job.id, rows_done=done)
        if time.monotonic() - last_event >= _PROGRESS_EVERY_S or done == total:
            store.add_event(job.id, "progress", f"{done:,} of {total:,} rows", {"rows_done": done, "rows_total": total})
            last_event = time.monotonic()
        if _Stop.requested:
            break
    return generated


def _sole_worker(path: Path) -> IO[str] | int:
    """An exclusive lock on the job for this process's life (the kernel drops it when the process dies, SIGKILL
    too); the pid of the process holding it when it is taken."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        return int(holder) if holder.isdigit() else -1
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def _prediction(row: BatchRow, plan: BatchPlan, attempt: int, gen: Any) -> Prediction:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    key_value = row.key if plan.key_column else None
    if gen is None:
        return Prediction(row.key, key_value, row.prompt, None, "skipped", 0, 0, 0.0, plan.model_id, attempt, now)
    return Prediction(row.key, key_value, row.prompt, gen.text, gen.finish_reason, gen.prompt_tokens,
                      gen.completion_tokens, float(gen.latency_ms), plan.model_id, attempt, now)


def _capture(ws: Workspace, job_id: str, spool: BatchSpool) -> None:
    """Spooled predictions into the traffic capture (idempotent on the request id), then marked captured."""
    from runtimes.monitoring.traffic import TrafficRecord, record

    while pending := spool.unrecorded():
        answered = [p for p in pending if p.finish_reason != "skipped"]  # a row with no prompt was not a request
        record(ws, [TrafficRecord(request_id=f"{job_id}:{p.row_key}", endpoint="batch", model=p.model,
                                  ts=dt.datetime.fromisoformat(p.created_at), route="batch", prompt=p.prompt,
                                  response=p.prediction or "", prompt_tokens=p.prompt_tokens,
                                  completion_tokens=p.completion_tokens, latency_ms=p.latency_ms,
                                  metadata={"batch_job": job_id, "row_key": p.row_key}) for p in answered])
        spool.mark_recorded([p.row_key for p in pending])


if __name__ == "__main__":
    sys.exit(main())

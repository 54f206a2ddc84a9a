"""Batch transform: run a served model (a registered version or a base model) over a catalog table or a read query
and write a predictions table to the warehouse, catalogued with its lineage. `BatchSpec` → `plan_batch` (checks
everything and reads the rows, no side effects) → `run_batch` (a job in its own process) → `status` / `events` /
`cancel` / `resume`.

The job survives crashes: predictions are committed per micro-batch and a restarted job skips the rows already
done. Nothing here runs a model in the caller's process; the worker (batch_worker.py) does.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from catalog.data_source import SourceFields
from core.errors import UserError, validate_input
from core.principal import Principal
from core.workspace import Workspace
from runtimes.job_process import is_worker_alive, spawn_worker
from runtimes.serving.batch.store import ACTIVE, FINAL, BatchJob, BatchStore, Event
from runtimes.models.refs import ServedModel

WORKER = "runtimes.serving.batch.worker"
STARTING_GRACE_S = 60.0  # a job whose worker has not yet written its pid is starting, not dead


class BatchSpec(SourceFields):
    """What a user asked to run: the model, the rows (`table` or `sql`) and how to prompt."""
    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, description="a registered model (NAME, NAME@N, NAME@latest) or a base model")
    prompt_column: str | None = Field(None, description="the column holding the prompts; detected when left out")
    key_column: str | None = Field(None, description="the column naming each row; the table's key or a unique *_id "
                                   "column when left out, else each row's content")
    into: str | None = Field(None, description="the predictions table to write; default `<source>_predictions`")
    format: Literal["auto", "chat", "prompt", "messages"] = Field(
        "auto", description="chat: each text as the user's turn; prompt: plain text; messages: the chat a column "
        "holds; auto: messages where the column holds them, else chat")
    system_prompt: str | None = None
    max_new_tokens: int = Field(64, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 is greedy (the default): the same rows give the "
                               "same predictions")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = None
    micro_batch: int = Field(16, ge=1, le=4096, description="rows per committed chunk: a crash redoes at most these")
    replace: bool = Field(False, description="replace an existing predictions table made by an earlier batch")
    publish_wait_s: float = Field(300.0, ge=0, description="how long to wait for the warehouse when another "
                                  "process holds it, before ending with the predictions kept for `resume`")

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "BatchSpec":
        return validate_input(cls, data, "batch")


class BatchPlan(BaseModel):
    """The resolved batch: model files, the statement that reads the rows, columns, format and output table."""
    spec: BatchSpec
    model_id: str
    base: str
    base_ref: str
    adapter: str | None
    version: str | None
    source_statement: str  # what the job reads each attempt, as asked (table or query)
    source_sql: str  # what ran for the planner, after PII masking (recorded as lineage)
    source_tables: list[str]
    prompt_column: str
    prompt_reason: str
    key_column: str | None
    key_type: str | None
    format: Literal["chat", "prompt", "messages"]
    into: str
    rows: int
    rows_with_prompt: int
    content_hash: str
    lineage: dict[str, list[str]] = Field(default_factory=dict, description="source column → its `table.column`s")
    pii: dict[str, str] = Field(default_factory=dict, description="source column → its PII tag")
    principal: Principal | None = Field(None, description="who asked: the rows are read, and masked, as for them")

    def served(self) -> ServedModel:
        return ServedModel(id=self.model_id, base=self.base, base_ref=self.base_ref, adapter=self.adapter)

    def explain(self) -> str:
        source = f"table `{self.spec.table}`" if self.spec.table else f"query `{self.source_sql}`"
        key = f"`{self.key_column}`" if self.key_column else "each row's content (no unique key column)"
        skipped = self.rows - self.rows_with_prompt
        decoding = "greedy" if self.spec.temperature == 0 else f"temperature {self.spec.temperature:g}"
        lines = [f"model: `{self.model_id}`" + (f" (adapter over {self.base_ref})" if self.adapter else ""),
                 f"rows: {self.rows:,} from {source}" + (f"; {skipped:,} without a prompt are kept, unanswered"
                                                           if skipped else ""),
                 f"prompt: column `{self.prompt_column}` ({self.prompt_reason}), sent as {self.format}",
                 f"key: {key}",
                 f"decoding: {decoding}, up to {self.spec.max_new_tokens} new tokens per row "
                 f"(at most {self.rows_with_prompt * self.spec.max_new_tokens:,} tokens in all)",
                 f"output: warehouse table `{self.into}`" + (" (replacing the earlier one)" if self.spec.replace else ""),
                 f"commits every {self.spec.micro_batch} rows; a crash or cancel resumes where it stopped"]
        return "\n".join(lines)


def plan_batch(ws: Workspace, spec: BatchSpec | dict[str, Any], principal: Principal | None = None) -> BatchPlan:
    """Check the model, the rows, the columns and the output table; read the rows once. No side effects."""
    from catalog.store import CatalogStore
    from runtimes.serving.batch.output import check_output
    from runtimes.serving.batch.source import (batch_rows, choose_key_column, choose_prompt_column, content_hash,
                                               default_output, describe_source, detect_format, read_rows,
                                               source_statement)
    from runtimes.models.refs import resolve_served

    ws.require()
    spec = spec if isinstance(spec, BatchSpec) else BatchSpec.parse(spec)
    served = resolve_served(ws, spec.model)
    statement = source_statement(spec.table, spec.sql)
    source = read_rows(ws, statement, principal)
    columns = describe_source(ws, statement)
    table_meta = CatalogStore(ws).load().table(spec.table) if spec.table else None
    key = choose_key_column(source.columns, source.rows, spec.key_column,
                            list(table_meta.primary_key) if table_meta else [])
    prompt, reason = choose_prompt_column(source.columns, source.rows, spec.prompt_column, avoid=(key,))
    fmt = detect_format(source, prompt, spec.format)
    rows = batch_rows(source, prompt, key, fmt, spec.system_prompt)
    with_prompt = sum(1 for r in rows if r.prompt)
    if not with_prompt:
        raise UserError(f"the prompt column `{prompt}` is empty: none of its {len(rows):,} rows holds text; "
                        "choose another with --prompt-column")
    into = spec.into or default_output(spec.table, source.tables)
    check_output(ws, into, replace=spec.replace, job_id=None)
    return BatchPlan(spec=spec, model_id=served.id, base=served.base, base_ref=served.base_ref, adapter=served.adapter,
                     version=served.version.version if served.version else None, source_statement=statement,
                     source_sql=source.sql,
                     source_tables=source.tables, prompt_column=prompt, prompt_reason=reason, key_column=key,
                     key_type=columns[key].type if key and key in columns else None, format=fmt, into=into,
                     rows=len(rows), rows_with_prompt=with_prompt, content_hash=content_hash(rows),
                     lineage={c: s.sources for c, s in columns.items() if s.sources},
                     pii={c: s.pii for c, s in columns.items() if s.pii}, principal=principal)


def run_batch(ws: Workspace, plan: BatchPlan) -> BatchJob:
    """Start the batch as a job in its own process; returns at once (follow it with `status` or `wait`)."""
    store = BatchStore(ws)
    job = store.create(plan.model_dump(mode="json"), rows_total=plan.rows)
    _start(ws, store, job.id)
    return store.get(job.id)


def status(ws: Workspace, job_id: str) -> BatchJob:
    return BatchStore(ws).get(job_id)


def events(ws: Workspace, job_id: str, after: int = 0) -> list[Event]:
    return BatchStore(ws).events(job_id, after)


def jobs(ws: Workspace) -> list[BatchJob]:
    return BatchStore(ws).list()


def cancel(ws: Workspace, job_id: str) -> BatchJob:
    """Stop a batch after the micro-batch in flight (SIGTERM); what is done is kept and `resume` continues."""
    store = BatchStore(ws)
    job = store.get(job_id)
    if job.status in FINAL:
        raise UserError(f"batch {job_id} is already {job.status}; nothing to cancel")
    store.update(job_id, stop_requested=1)
    if job.pid and is_worker_alive(job.pid, job_id):
        os.kill(job.pid, signal.SIGTERM)
        store.add_event(job_id, "cancel", "stop requested: the batch commits its current rows and stops")
    else:
        store.set_status(job_id, "cancelled", "cancelled (its process was gone)", expect=("queued", *ACTIVE))
    return store.get(job_id)


def resume(ws: Workspace, job_id: str) -> BatchJob:
    """Start a cancelled or failed batch again; the rows already done are skipped."""
    store = BatchStore(ws)
    job = store.get(job_id)
    if job.status not in ("cancelled", "failed"):
        raise UserError(f"batch {job_id} is {job.status}; only a cancelled or failed batch can be resumed")
    if not store.set_status(job_id, "queued", f"resume requested: {job.rows_done:,} of {job.rows_total:,} rows are "
                            "done and will not be redone", expect=("cancelled", "failed")):
        raise UserError(f"batch {job_id} was resumed by another process just now; follow it with "
                        f"`lathe batch status {job_id}`")
    _start(ws, store, job_id)
    return store.get(job_id)


def recover(ws: Workspace) -> list[str]:
    """Restart the batches whose process died (SIGKILL, a crash, a reboot); returns their ids."""
    store = BatchStore(ws)
    restarted: list[str] = []
    now = time.time()
    for job in store.list(("queued", *ACTIVE)):
        if job.pid is None and now - (job.queued_at or job.created_at) < STARTING_GRACE_S:
            continue
        if job.pid is not None and is_worker_alive(job.pid, job.id):
            continue
        if job.stop_requested:  # it died before it could honour a cancel: the cancel stands
            store.set_status(job.id, "cancelled", "cancelled (its process was gone)", expect=(job.status,))
            continue
        if store.set_status(job.id, "queued", f"its process died with {job.rows_done:,} of {job.rows_total:,} rows "
                            "done; restarting, those rows are kept", expect=(job.status,)):
            _start(ws, store, job.id)
            restarted.append(job.id)
    return restarted


def wait(ws: Workspace, job_id: str, timeout_s: float = 3600.0, poll_s: float = 0.2,
         on_progress: Callable[[BatchJob], None] | None = None) -> BatchJob:
    """Block until the batch ends, calling `on_progress` with each new state (a progress bar)."""
    store = BatchStore(ws)
    deadline = time.monotonic() + timeout_s
    while True:
        job = store.get(job_id)
        if on_progress is not None:
            on_progress(job)
        if job.status in FINAL:
            return job
        if time.monotonic() > deadline:
            raise UserError(f"batch {job_id} is still {job.status} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def job_dir(ws: Workspace, job_id: str) -> Path:
    return ws.root / "runs" / job_id


def _start(ws: Workspace, store: BatchStore, job_id: str) -> None:
    pid = spawn_worker(ws, WORKER, job_id, job_dir(ws, job_id) / "worker.log")
    store.update(job_id, pid=pid)

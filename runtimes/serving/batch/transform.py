"""Batch transform: run a served model (a registered version or a base model) over a catalog table or a read query
and write a predictions table to the warehouse, catalogued with its lineage. `BatchSpec` → `plan_batch` (checks
everything and streams the rows once, no side effects) → `run_batch` (a job of kind `batch`, followed, cancelled
and resumed like every job through runtimes/jobs/lifecycle.py).

Nothing here runs a model in the caller's process; the job's worker does (batch_kind.py).
"""
from __future__ import annotations

import contextlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from catalog.data_source import SourceFields
from core.errors import UserError, validate_input
from core.principal import Principal
from core.workspace import Workspace
from runtimes.jobs.store import Job
from runtimes.models.refs import ServedModel


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
    """Check the model, the rows, the columns and the output table: the columns are chosen on the first chunk of
    rows, then every row is streamed once to count and hash them (no row limit). No side effects."""
    import itertools

    from catalog.store import CatalogStore
    from runtimes.models.refs import resolve_served
    from runtimes.serving.batch.output import check_output
    from runtimes.serving.batch.source import (choose_key_column, choose_prompt_column, default_output,
                                               describe_source, detect_format, scan_rows, source_statement,
                                               stream_rows)

    ws.require()
    spec = spec if isinstance(spec, BatchSpec) else BatchSpec.parse(spec)
    served = resolve_served(ws, spec.model)
    statement = source_statement(spec.table, spec.sql)
    columns = describe_source(ws, statement)
    # Closed on every way out: a refused column must not leave the generator (and its reader) suspended.
    with contextlib.closing(stream_rows(ws, statement, principal)) as chunks:
        first = next(chunks, None)
        if first is None:
            raise UserError(f"the batch's source is empty: `{statement}` returned no rows")
        table_meta = CatalogStore(ws).load().table(spec.table) if spec.table else None
        key = choose_key_column(first.columns, first.rows, spec.key_column,
                                list(table_meta.primary_key) if table_meta else [])
        prompt, reason = choose_prompt_column(first.columns, first.rows, spec.prompt_column, avoid=(key,))
        fmt = detect_format(first, prompt, spec.format)
        scan = scan_rows(itertools.chain([first], chunks), prompt, key, fmt, spec.system_prompt)
    if scan.key_problem and key is not None:
        if spec.key_column is not None:
            raise UserError(f"`{key}` cannot key the batch's rows: {scan.key_problem}; choose a unique column with "
                            "--key-column, or leave it out to key rows by their content")
        key = None  # unique in the first rows only: rows are keyed by their content instead
        with contextlib.closing(stream_rows(ws, statement, principal)) as again:
            scan = scan_rows(again, prompt, key, fmt, spec.system_prompt)
    if not scan.with_prompt:
        raise UserError(f"the prompt column `{prompt}` is empty: none of its {scan.rows:,} rows holds text; "
                        "choose another with --prompt-column")
    into = spec.into or default_output(spec.table, first.tables)
    check_output(ws, into, replace=spec.replace, job_id=None)
    return BatchPlan(spec=spec, model_id=served.id, base=served.base, base_ref=served.base_ref, adapter=served.adapter,
                     version=served.version.version if served.version else None, source_statement=statement,
                     source_sql=first.sql, source_tables=first.tables, prompt_column=prompt, prompt_reason=reason,
                     key_column=key, key_type=columns[key].type if key and key in columns else None, format=fmt,
                     into=into, rows=scan.rows, rows_with_prompt=scan.with_prompt, content_hash=scan.content_hash,
                     lineage={c: s.sources for c, s in columns.items() if s.sources},
                     pii={c: s.pii for c, s in columns.items() if s.pii}, principal=principal)


def run_batch(ws: Workspace, plan: BatchPlan) -> Job:
    """Start the approved batch as a job in its own process; returns at once (follow it with `lifecycle.wait`)."""
    from runtimes.jobs.lifecycle import submit
    from runtimes.serving.batch.batch_kind import planned

    return submit(ws, "batch", planned=planned(plan))

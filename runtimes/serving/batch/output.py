"""The predictions table: a finished batch's spooled predictions written to the warehouse in one transaction with
their catalog entry and column lineage (source table or query, model version), through the trusted writer.

It waits, within a limit, while another process holds the warehouse, and never replaces a table that no batch made.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from core.errors import UserError
from catalog.metadata import Column, ColumnLineage, PiiTag, Table
from core.workspace import Workspace
from runtimes.serving.batch.spool import Prediction

T = TypeVar("T")
SOURCE_PREFIX = "batch:"  # the catalog's `source` of a predictions table: `batch:<job id>`
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_RESULT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("prompt", "VARCHAR", "the prompt sent to the model (chat messages as `role: text` lines)"),
    ("prediction", "VARCHAR", "the model's reply; empty where the row had no prompt"),
    ("finish_reason", "VARCHAR", "stop (the model ended), length (the token limit cut it), skipped (no prompt) "
     "or error (the prompt exceeds the model's context length)"),
    ("prompt_tokens", "INTEGER", "tokens in the prompt"),
    ("completion_tokens", "INTEGER", "tokens generated"),
    ("latency_ms", "DOUBLE", "time to generate this row, milliseconds"),
    ("model", "VARCHAR", "the model that answered (registered name@version, or a base model)"),
    ("batch_job", "VARCHAR", "the batch job that made the row"),
    ("created_at", "TIMESTAMP", "when the row was answered, UTC"),
)


def check_output(ws: Workspace, name: str, *, replace: bool, job_id: str | None) -> None:
    """Refuse an output name that is not a plain identifier, or that names a table this batch may not replace."""
    from catalog.store import CatalogStore

    if not (name.isascii() and name.isidentifier()):
        raise UserError(f"`{name}` is not a usable table name: use letters, digits and underscores, starting with a "
                        "letter (e.g. tickets_predictions)")
    existing = CatalogStore(ws).load().table(name)
    if existing is None:
        if name.lower() in {t.lower() for t in _warehouse_tables(ws)}:
            raise UserError(f"table `{name}` already exists in the warehouse; choose another name with --into")
        return
    source = existing.source or ""
    if job_id is not None and source == SOURCE_PREFIX + job_id:
        return  # this job published it before a crash: publishing again is the same rows
    if not source.startswith(SOURCE_PREFIX):
        raise UserError(f"table `{existing.name}` exists and no batch made it (its source is "
                        f"{source or 'not recorded'}); choose another name with --into")
    if not replace:
        raise UserError(f"table `{existing.name}` exists (made by {source.removeprefix(SOURCE_PREFIX)}); pass "
                        "--replace to replace it, or choose another name with --into")


def publish(ws: Workspace, job_id: str, plan: Any, predictions: Callable[[], Iterable[list[Prediction]]], *,
            wait_s: float, on_wait: Callable[[str], None] | None = None) -> Table:
    """Write the predictions table and its catalog entry together; returns the entry. `plan` is a BatchPlan;
    `predictions()` gives them in chunks, read afresh on each try, and streamed into the warehouse."""
    def write() -> Table:
        check_output(ws, plan.into, replace=plan.spec.replace, job_id=job_id)
        return _write(ws, job_id, plan, predictions())

    return when_free(write, wait_s=wait_s, on_wait=on_wait,
                     gave_up=f"the predictions are kept with the job: `lathe jobs resume {job_id}` writes them "
                             "once it is free")


def when_free(fn: Callable[[], T], *, wait_s: float, on_wait: Callable[[str], None] | None, gave_up: str) -> T:
    """`fn()`, tried again with growing pauses while another process holds the warehouse's file lock (DuckDB lets
    no other process in while one writes), for at most `wait_s`; then a `UserError` ending with `gave_up`."""
    import duckdb

    deadline = time.monotonic() + wait_s
    pause = 0.2
    while True:
        try:
            return fn()
        except duckdb.IOException as e:
            if "lock" not in str(e).lower():
                raise
            if time.monotonic() >= deadline:
                raise UserError(f"the warehouse is held by another process ({_first_line(e)}) and stayed so for "
                                f"{wait_s:g} s; {gave_up}") from None
            if on_wait is not None:
                on_wait(_first_line(e))
                on_wait = None  # said once
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


_ARROW_COLUMNS = (("key_value", "string"), ("prompt", "string"), ("prediction", "string"),
                  ("finish_reason", "string"), ("prompt_tokens", "int64"), ("completion_tokens", "int64"),
                  ("latency_ms", "float64"), ("model", "string"), ("created_at", "string"), ("batch_job", "string"))


def _write(ws: Workspace, job_id: str, plan: Any, chunks: Iterable[list[Prediction]]) -> Table:
    import pyarrow as pa

    from catalog.store import CatalogStore
    from catalog.warehouse_change import warehouse_change

    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in _ARROW_COLUMNS])

    def batches() -> Iterator[pa.RecordBatch]:
        for chunk in chunks:
            keys = [p.key_value if plan.key_column else p.row_key for p in chunk]
            yield pa.record_batch([keys, *([getattr(p, c) for p in chunk] for c, _ in _ARROW_COLUMNS[1:-1]),
                                   [job_id] * len(chunk)], schema=schema)

    key_name, key_sql, key_type = _key_column(plan)
    selects = [f"{key_sql} AS {_q(key_name)}"] + [f"CAST({_q(c)} AS {t}) AS {_q(c)}" for c, t, _ in _RESULT_COLUMNS]
    store = CatalogStore(ws)
    kept = [x for x in store.load().lineage if x.table.lower() != plan.into.lower()]
    with warehouse_change(ws) as (con, txn):
        # A record batch reader: DuckDB pulls one chunk at a time as it writes the table.
        con.register("_lathe_predictions", pa.RecordBatchReader.from_batches(schema, batches()))
        con.execute(f"CREATE OR REPLACE TABLE {_q(plan.into)} AS SELECT {', '.join(selects)} "
                    "FROM _lathe_predictions")
        con.unregister("_lathe_predictions")
        (rows,) = con.execute(f"SELECT count(*) FROM {_q(plan.into)}").fetchone()
        table = _entry(job_id, plan, key_name, key_type, rows)
        txn.put_table(table)
        txn.put_lineage(kept + _lineage(job_id, plan, key_name))
    return table


def _key_column(plan: Any) -> tuple[str, str, str]:
    """(name, SQL that makes it from the spooled text, DuckDB type): the source's key keeps its name and, for
    integers and text, its type, so the predictions join back to their rows."""
    if not plan.key_column:
        return "row_id", 'CAST("key_value" AS VARCHAR)', "VARCHAR"
    name = plan.key_column
    if name.lower() in {c for c, _, _ in _RESULT_COLUMNS}:
        name = f"input_{name}"
    kind = (plan.key_type or "VARCHAR").upper()
    kind = kind if kind in _INTEGER_TYPES or kind == "VARCHAR" else "VARCHAR"
    return name, f'CAST("key_value" AS {kind})', kind


def _entry(job_id: str, plan: Any, key_name: str, key_type: str, rows: int) -> Table:
    src = f"table `{plan.spec.table}`" if plan.spec.table else "a query"
    version = f" (version {plan.version})" if plan.version else ""
    prompt_pii = plan.pii.get(plan.prompt_column)
    key_pii = plan.pii.get(plan.key_column) if plan.key_column else None
    descriptions = {"prompt": f"the prompt sent to the model, from `{plan.prompt_column}` of {src}"}
    columns = [Column(name=key_name, type=key_type, pii=PiiTag(key_pii) if key_pii else None,
                      description=(f"`{plan.key_column}` of the source row" if plan.key_column
                                   else "the source row's id: a hash of its values (it had no unique key column)"))]
    for c, t, d in _RESULT_COLUMNS:
        # A prompt carries its source's PII tag; a reply may repeat what the prompt holds, so it carries it too.
        pii = PiiTag(prompt_pii) if prompt_pii and c in ("prompt", "prediction") else None
        columns.append(Column(name=c, type=t, description=descriptions.get(c, d), pii=pii))
    return Table(name=plan.into, owner="lathe", source=SOURCE_PREFIX + job_id,
                 tags=["batch", "predictions", f"model:{plan.model_id}"], primary_key=[key_name], row_count=rows,
                 description=(f"predictions of model `{plan.model_id}`{version} over {src}, one row per source row, "
                              f"made by batch job {job_id}"),
                 columns=columns)


def _lineage(job_id: str, plan: Any, key_name: str) -> list[ColumnLineage]:
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    made = f"-- batch {job_id}: model {plan.model_id}" + (f" version {plan.version}" if plan.version else "")
    sql = f"{made}\n{plan.source_sql}"
    prompt_sources = plan.lineage.get(plan.prompt_column, [])
    out = [ColumnLineage(table=plan.into, column=c, sources=prompt_sources, sql=sql, created_at=now)
           for c in ("prompt", "prediction")]
    if plan.key_column:
        out.insert(0, ColumnLineage(table=plan.into, column=key_name, sources=plan.lineage.get(plan.key_column, []),
                                    sql=sql, created_at=now))
    return out


def _warehouse_tables(ws: Workspace) -> list[str]:
    from catalog.warehouse import connect_reader

    with connect_reader(ws) as con:
        return [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

"""Batch scoring with a table model as a kind of job (`score`): the worker snapshots the approved rows from DuckDB into
the job folder in chunks (checking they are still the rows planned), scores the chunks not yet scored, each saved
whole before the next, then writes the scores table with its catalog entry and lineage in one transaction.

A kill loses at most the chunk in flight and a resumed job scores only what is missing, so no row is scored twice or
left out; a stop (SIGTERM) ends the job after the chunk in hand, `cancelled`, resumable.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.jobs.kinds import JobKind, Planned
from runtimes.jobs.store import Job, Progress
from runtimes.jobs.worker import WorkerRun
from runtimes.tabular.table_scoring import ScorePlan, ScoreSpec, plan_score

_PROGRESS_EVERY_S = 2.0
_WAIT_S = 300.0  # for the warehouse, while another process holds it


def plan(ws: Workspace, spec: ScoreSpec | dict[str, Any], principal: Principal | None = None) -> Planned:
    return planned(plan_score(ws, spec, principal))


def planned(p: ScorePlan) -> Planned:
    return Planned(spec=p.spec.model_dump(mode="json", exclude_none=True), plan=p.model_dump(mode="json"),
                   progress=Progress(0, p.rows, "rows"))


def work(run: WorkerRun) -> None:
    from runtimes.serving.batch.output import when_free
    from runtimes.tabular.scoring import OnlineFill, load_version
    from runtimes.tabular.table_scoring import scored, scores_frame, write_table

    job, store = run.job, run.store
    p = ScorePlan.model_validate(job.plan)
    model = load_version(run.ws, p.model_id)
    source, scores = run.folder / "source", run.folder / "scores"

    def waiting(why: str) -> None:
        store.add_event(job.id, "waiting", f"the warehouse is busy ({why}); waiting up to {_WAIT_S:g} s")

    if not (source / "done.json").exists():
        when_free(lambda: _snapshot(run, p, source, scores), wait_s=_WAIT_S, on_wait=waiting,
                  gave_up=f"`lathe jobs resume {job.id}` tries again")
    manifest = json.loads((source / "done.json").read_text())
    sizes, columns = manifest["sizes"], manifest["columns"]
    done = sum(n for k, n in enumerate(sizes) if _chunk(scores, k).exists())
    store.set_progress(job.id, done, p.rows)
    run.stop.check()
    if not run.running(f"running attempt {job.attempt}: {done:,} of {p.rows:,} rows already scored, "
                       f"{p.rows - done:,} to go", attempt=job.attempt, skipped=done, todo=p.rows - done):
        return  # cancelled while it started
    fill, first, last_event = OnlineFill(run.ws, model), 0, time.monotonic()
    for k, n in enumerate(sizes):
        if not _chunk(scores, k).exists():
            if run.stop.requested:
                break
            rows = _load(_chunk(source, k))
            labels, values = scored(model, columns, rows, first_row=first, fill=fill)
            _save(_chunk(scores, k), (labels, values, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)))
            done += n
            due = time.monotonic() - last_event >= _PROGRESS_EVERY_S or done == p.rows
            store.set_progress(job.id, done, p.rows, event=f"{done:,} of {p.rows:,} rows" if due else None)
            last_event = time.monotonic() if due else last_event
        first += n
    if run.stop.requested and done < p.rows:
        store.set_status(job.id, "cancelled", f"stopped with {done:,} of {p.rows:,} rows scored; `lathe batch "
                         f"resume {job.id}` continues", data={"rows_done": done})
        return
    frames = []
    for k in range(len(sizes)):
        labels, values, at = _load(_chunk(scores, k))
        frames.append(scores_frame(columns, _load(_chunk(source, k)), labels, values, model.id, [at] * len(labels)))
    import pandas as pd

    frame = pd.concat(frames, ignore_index=True)
    table = when_free(lambda: write_table(run.ws, p, job.id, model, columns, frame), wait_s=_WAIT_S, on_wait=waiting,
                      gave_up=f"the scores are kept with the job: `lathe batch resume {job.id}` writes them once "
                              "it is free")
    store.record(job.id, output_table=table.name,
                 lineage={"model": model.id, "source": p.statement, "rows": len(frame), "content_hash": p.content_hash,
                          "features": model.features, "feature_views": model.feature_views})
    store.set_progress(job.id, len(frame), p.rows)
    store.set_status(job.id, "succeeded", f"succeeded: {len(frame):,} rows scored with {model.id} into table "
                     f"`{table.name}`", data={"table": table.name, "rows": len(frame)})


def _snapshot(run: WorkerRun, p: ScorePlan, source: Path, scores: Path) -> None:
    """The approved rows into the job folder, chunk by chunk; `done.json` is written last, so a snapshot a kill cut
    short is made again from the start (no chunk is scored before it is whole)."""
    from runtimes.serving.batch.source import stream_rows
    from runtimes.tabular.table_scoring import RowsHash

    for folder in (source, scores):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    hashed, sizes, columns = RowsHash(), [], []
    for k, chunk in enumerate(stream_rows(run.ws, p.statement, p.principal, chunk_rows=p.spec.chunk_rows)):
        run.stop.check()
        _save(_chunk(source, k), chunk.rows)
        hashed.add(chunk.rows)
        sizes.append(len(chunk.rows))
        columns = chunk.columns
    if hashed.hexdigest() != p.content_hash or sum(sizes) != p.rows:
        raise UserError(f"the rows to score changed since the plan was approved ({p.rows:,} rows, hash "
                        f"{p.content_hash[:12]} → {sum(sizes):,} rows, {hashed.hexdigest()[:12]}): scoring them now "
                        "would not be the approved job; start a new batch")
    _save(source / "done.json", json.dumps({"sizes": sizes, "columns": columns}).encode(), raw=True)


def _chunk(folder: Path, k: int) -> Path:
    return folder / f"{k:06d}.pkl"


def _save(path: Path, value: Any, raw: bool = False) -> None:
    """Written whole or not at all: a kill mid-write leaves only a temporary file, never a short chunk."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(value if raw else pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, path)


def _load(path: Path) -> Any:
    return pickle.loads(path.read_bytes())  # the job's own files, written by _save


def _where(job: Job) -> str:
    return f"{job.rows_done:,} of {job.rows_total:,} rows scored"


def _resumes_from(job: Job) -> str:
    return f"keeping the {job.rows_done:,} rows scored" if job.rows_done else "from the first row"


KIND = JobKind(name="score", plan=plan, work=work, where=_where, resumes_from=_resumes_from)

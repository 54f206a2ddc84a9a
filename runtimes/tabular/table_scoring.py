"""Batch scoring: a registered table model run over a catalog table or one query, written into a new warehouse table
(the source's columns, `prediction`, `score` for a classifier, the model and when) with its catalog entry and
column lineage (the predictions come from the feature columns they were computed from and the model version).

Rows that carry the entity key but not every feature get them from the online store, as the endpoint does. It
reads through the SQL guard with the principal's masking, checks every row before writing, and writes the table
and its catalog entry in one transaction: a bad row leaves nothing behind.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from catalog.metadata import Column, ColumnLineage, PiiTag, Table
from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace

SOURCE_PREFIX = "batch:score-"  # a predictions table's catalog `source`, as the batch path marks its own
CHUNK_ROWS = 50_000
_ADDED = (("prediction", "the model's prediction (the class for a classifier)"),
          ("score", "a classifier's probability of the positive class (the top class's when there are more)"),
          ("model", "the model version that scored the row"), ("scored_at", "when the row was scored, UTC"))


@dataclass(frozen=True)
class Scored:
    table: Table
    model: str
    rows: int
    source_sql: str


def score_table(ws: Workspace, model_ref: str, *, table: str | None = None, sql: str | None = None,
                into: str | None = None, replace: bool = False, principal: Principal | None = None,
                dry_run: bool = False) -> Scored:
    """Score every row of `table` (or the query `sql`) with the approved version `model_ref` into `into`
    (default: `<table>_scores`); `dry_run`: check every row, write nothing."""
    import pandas as pd

    from runtimes.serving.batch.output import check_output, when_free
    from runtimes.serving.batch.source import describe_source, read_rows, source_statement
    from runtimes.tabular.scoring import OnlineFill, load_version

    principal = principal or Principal.local_admin()
    model = load_version(ws, model_ref)
    statement = source_statement(table, sql)
    into = into or f"{table or 'query'}_scores"
    check_output(ws, into, replace=replace, job_id=None)
    described = describe_source(ws, statement)
    source = read_rows(ws, statement, principal)
    clash = [c for c, _ in _ADDED if c in source.columns]
    if clash:
        raise UserError(f"the source already has column(s) {', '.join(clash)}, which the scores table adds: "
                        "rename them in a query (… AS other_name)")
    records = [dict(zip(source.columns, r)) for r in source.rows]
    fill = OnlineFill(ws, model)
    predictions: list[Any] = []
    scores: list[float | None] = []
    for at in range(0, len(records), CHUNK_ROWS):
        chunk = fill.complete(records[at:at + CHUNK_ROWS], first_row=at)
        labels, chunk_scores = model.predict(model.frame(chunk, first_row=at))
        predictions += labels
        scores += chunk_scores or [None] * len(labels)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    frame = pd.DataFrame({c: [r[i] for r in source.rows] for i, c in enumerate(source.columns)})
    frame["prediction"] = predictions
    frame["score"] = pd.Series(scores, dtype="float64")
    frame["model"], frame["scored_at"] = model.id, now
    entry = _entry(into, model, table, described, source.columns, len(frame))
    lineage = _lineage(ws, into, model, statement, described)
    if dry_run:
        return Scored(entry, model.id, len(frame), statement)
    when_free(lambda: _write(ws, into, frame, entry, lineage), wait_s=60.0, on_wait=None,
              gave_up="score the table again once it is free")
    return Scored(entry, model.id, len(frame), statement)


def _write(ws: Workspace, into: str, frame: Any, entry: Table, lineage: list[ColumnLineage]) -> None:
    from catalog.store import CatalogStore
    from catalog.warehouse_change import warehouse_change

    kept = [x for x in CatalogStore(ws).load().lineage if x.table.lower() != into.lower()]
    with warehouse_change(ws) as (con, txn):
        con.register("_lathe_scores", frame)
        con.execute(f"CREATE OR REPLACE TABLE {_q(into)} AS SELECT * FROM _lathe_scores")
        con.unregister("_lathe_scores")
        txn.put_table(entry)
        txn.put_lineage(kept + lineage)


def _entry(into: str, model: Any, table: str | None, described: dict[str, Any], columns: list[str],
           rows: int) -> Table:
    src = f"table `{table}`" if table else "a query"
    out = [Column(name=c, type=described[c].type if c in described else "VARCHAR",
                  pii=PiiTag(described[c].pii) if c in described and described[c].pii else None,
                  description=f"`{c}` of the source row") for c in columns]
    types = {"prediction": "DOUBLE" if model.task != "classification" else
             ("BIGINT" if isinstance(model.label(0), int) else "VARCHAR"),
             "score": "DOUBLE", "model": "VARCHAR", "scored_at": "TIMESTAMP"}
    out += [Column(name=c, type=types[c], description=d) for c, d in _ADDED]
    key = [model.entity] if model.entity and model.entity in columns else []
    return Table(name=into, owner="lathe", source=SOURCE_PREFIX + model.id, primary_key=key, row_count=rows,
                 tags=["batch", "predictions", f"model:{model.id}"], columns=out,
                 description=f"scores of model `{model.id}` over {src}, one row per source row")


def _lineage(ws: Workspace, into: str, model: Any, statement: str, described: dict[str, Any]) -> list[ColumnLineage]:
    """Each source column from where it came; the prediction and score from the model's feature columns (those of
    the source, and the feature views' own source columns for features read online)."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    sql = f"-- scored by model {model.id}\n{statement}"
    feature_sources = [s for c in model.features if c in described for s in described[c].sources]
    if model.feature_views and any(c not in described for c in model.features):
        from runtimes.features.selection import select_features

        for sel in select_features(ws, model.feature_views):
            feature_sources += [s for f in sel.features if f.name in model.features
                                for s in sel.version.lineage.get(f.name, [])]
    out = [ColumnLineage(table=into, column=c, sources=list(col.sources), sql=sql, created_at=now)
           for c, col in described.items() if col.sources]
    out += [ColumnLineage(table=into, column=c, sources=list(dict.fromkeys(feature_sources)), sql=sql, created_at=now)
            for c in ("prediction", "score")]
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

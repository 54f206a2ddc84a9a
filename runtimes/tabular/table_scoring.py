"""Batch scoring, planned and written: a registered table model run over a catalog table or one query into a new
warehouse table (the source's columns, `prediction`, `score` for a classifier, the model and when) with its catalog
entry and column lineage (the predictions come from the feature columns they were computed from and the model).

`ScoreSpec` → `plan_score` (resolves the approved version, reads the rows once through the SQL guard with the
principal's masking, counts and hashes them; no side effects) → a job of kind `score` (score_kind.py) that scores
chunk by chunk and publishes the table and its catalog entry in one transaction. Nothing here runs in a worker.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from catalog.data_source import SourceFields
from catalog.metadata import Column, ColumnLineage, PiiTag, Table
from core.errors import UserError, validate_input
from core.principal import Principal
from core.workspace import Workspace

ADDED = (("prediction", "the model's prediction (the class for a classifier)"),
         ("score", "a classifier's probability of the positive class (the top class's when there are more)"),
         ("model", "the model version that scored the row"), ("scored_at", "when the row was scored, UTC"))


class ScoreSpec(SourceFields):
    """What a user asked to score: the model, the rows (`table` or `sql`) and the table to write."""
    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1, description="a registered table model: NAME (its approved version), NAME@N")
    into: str | None = Field(None, description="the scores table to write; default `<source>_scores`")
    replace: bool = Field(False, description="replace a scores table an earlier batch made")
    chunk_rows: int = Field(10_000, ge=1, le=1_000_000, description="rows scored and saved together: a crash or "
                            "cancel redoes at most these")

    @classmethod
    def parse(cls, data: Any) -> "ScoreSpec":
        return data if isinstance(data, ScoreSpec) else validate_input(cls, data, "scoring")


class ScorePlan(BaseModel):
    spec: ScoreSpec
    principal: Principal | None = None
    model_id: str  # `name@version`: the version resolved when approved, whatever is approved later
    statement: str  # the source as asked (table or query), read again by the job
    into: str
    rows: int
    content_hash: str  # of the rows as read at planning: the job scores these rows or none
    features: list[str]

    def explain(self) -> str:
        source = f"table `{self.spec.table}`" if self.spec.table else f"query `{self.statement}`"
        return "\n".join([f"model: `{self.model_id}` ({len(self.features)} features)",
                          f"rows: {self.rows:,} from {source}",
                          f"output: warehouse table `{self.into}`" + (" (replacing the earlier one)"
                                                                      if self.spec.replace else ""),
                          f"saves every {self.spec.chunk_rows:,} rows; a crash or cancel resumes where it stopped"])


def plan_score(ws: Workspace, spec: ScoreSpec | dict[str, Any], principal: Principal | None = None) -> ScorePlan:
    """Check everything a scoring job needs and read its rows once: every row must fit the model's inputs."""
    from runtimes.serving.batch.output import check_output
    from runtimes.serving.batch.source import source_statement, stream_rows
    from runtimes.tabular.scoring import OnlineFill, load_version

    spec = ScoreSpec.parse(spec)
    model = load_version(ws, spec.model)
    fill = OnlineFill(ws, model)
    statement = source_statement(spec.table, spec.sql)
    into = spec.into or f"{spec.table or 'query'}_scores"
    check_output(ws, into, replace=spec.replace, job_id=None)
    hashed, rows = RowsHash(), 0
    for chunk in stream_rows(ws, statement, principal, chunk_rows=spec.chunk_rows):
        check_columns(chunk.columns)
        scored(model, chunk.columns, chunk.rows, first_row=rows, fill=fill)  # a bad row is refused now, not mid-job
        hashed.add(chunk.rows)
        rows += len(chunk.rows)
    if not rows:
        raise UserError(f"the scoring source is empty: `{statement}` returned no rows")
    return ScorePlan(spec=spec, principal=principal, model_id=model.id, statement=statement, into=into, rows=rows,
                     content_hash=hashed.hexdigest(), features=model.features)


class RowsHash:
    """A hash of rows whatever order they come in (a query without ORDER BY streams them in any order)."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, rows: list[list[Any]]) -> None:
        for r in rows:
            self.total = (self.total + int.from_bytes(hashlib.sha256(repr(r).encode()).digest()[:16], "big")) % 2**128

    def hexdigest(self) -> str:
        return f"{self.total:032x}"


def check_columns(columns: list[str]) -> None:
    clash = [c for c, _ in ADDED if c in columns]
    if clash:
        raise UserError(f"the source already has column(s) {', '.join(clash)}, which the scores table adds: "
                        "rename them in a query (… AS other_name)")


def scored(model: Any, columns: list[str], rows: list[list[Any]], *, first_row: int,
           fill: Any) -> tuple[list[Any], list[float | None]]:
    """(predictions, scores) of rows; features missing from a row with the entity key come from the online store
    (`fill`, an `OnlineFill`)."""
    records = [dict(zip(columns, r)) for r in rows]
    records = fill.complete(records, first_row=first_row)
    labels, scores = model.predict(model.frame(records, first_row=first_row))
    return labels, scores or [None] * len(labels)


def write_table(ws: Workspace, plan: ScorePlan, job_id: str, model: Any, columns: list[str], frame: Any) -> Table:
    """The scores table, its catalog entry and its lineage in one transaction (a table this job wrote before a
    crash is written again with the same rows)."""
    from catalog.store import CatalogStore
    from catalog.warehouse_change import warehouse_change
    from runtimes.serving.batch.output import SOURCE_PREFIX, check_output
    from runtimes.serving.batch.source import describe_source

    check_output(ws, plan.into, replace=plan.spec.replace, job_id=job_id)
    described = describe_source(ws, plan.statement)
    entry = _entry(plan.into, model, plan.spec.table, described, columns, len(frame), SOURCE_PREFIX + job_id)
    lineage = _lineage(ws, plan.into, model, plan.statement, described)
    kept = [x for x in CatalogStore(ws).load().lineage if x.table.lower() != plan.into.lower()]
    with warehouse_change(ws) as (con, txn):
        con.register("_lathe_scores", frame)
        con.execute(f"CREATE OR REPLACE TABLE {_q(plan.into)} AS SELECT * FROM _lathe_scores")
        con.unregister("_lathe_scores")
        txn.put_table(entry)
        txn.put_lineage(kept + lineage)
    return entry


def scores_frame(columns: list[str], rows: list[list[Any]], predictions: list[Any], scores: list[float | None],
                 model_id: str, scored_at: list[dt.datetime]) -> Any:
    import pandas as pd

    frame = pd.DataFrame({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    frame["prediction"] = predictions
    frame["score"] = pd.Series(scores, dtype="float64")
    frame["model"], frame["scored_at"] = model_id, scored_at
    return frame


def _entry(into: str, model: Any, table: str | None, described: dict[str, Any], columns: list[str], rows: int,
           source: str) -> Table:
    src = f"table `{table}`" if table else "a query"
    out = [Column(name=c, type=described[c].type if c in described else "VARCHAR",
                  pii=PiiTag(described[c].pii) if c in described and described[c].pii else None,
                  description=f"`{c}` of the source row") for c in columns]
    types = {"prediction": "DOUBLE" if model.task != "classification" else
             ("BIGINT" if isinstance(model.label(0), int) else "VARCHAR"),
             "score": "DOUBLE", "model": "VARCHAR", "scored_at": "TIMESTAMP"}
    out += [Column(name=c, type=types[c], description=d) for c, d in ADDED]
    key = [model.entity] if model.entity and model.entity in columns else []
    return Table(name=into, owner="lathe", source=source, primary_key=key, row_count=rows,
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

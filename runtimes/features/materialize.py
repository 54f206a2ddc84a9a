"""Materialization: copy each view version's latest values per entity from the warehouse into the online store,
incrementally: each run reads only rows whose event time is after the last run's end, up to now (or `until`).

The end of each run is recorded in the workspace's state database; a view version whose online table is missing
is materialized from the start. It reads the warehouse through the guard, as the principal, and writes only
the online store and its own state.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from catalog.query_schema import warehouse_catalog
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from core.errors import UserError
from core.principal import Principal
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace
from runtimes.features.online_store import epoch, online_key, open_online_store, value
from runtimes.features.registry import ViewVersion, get_version, latest
from runtimes.features.view_sql import EVENT_TS, build_view_query, require_grants

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_materializations (
    name TEXT NOT NULL, version INTEGER NOT NULL, watermark TEXT NOT NULL, rows INTEGER NOT NULL,
    runs INTEGER NOT NULL, finished_at REAL NOT NULL, PRIMARY KEY (name, version));
"""


@dataclass
class Materialized:
    ref: str
    start: str | None  # exclusive; None: from the first row
    end: str
    rows: int  # entities written this run


def online_table(vv: ViewVersion) -> str:
    return f"{vv.name}__v{vv.version}"


def watermark(ws: Workspace, vv: ViewVersion) -> str | None:
    ensure_schema(ws.state_path, _SCHEMA)
    with transaction(ws.state_path) as db:
        row = db.execute("SELECT watermark FROM feature_materializations WHERE name = ? AND version = ?",
                         (vv.name, vv.version)).fetchone()
    return row[0] if row else None


def materialize(ws: Workspace, views: list[str] | None = None, *, until: dt.datetime | None = None,
                full: bool = False, principal: Principal | None = None) -> list[Materialized]:
    """Bring the online store up to `until` (default: now, UTC) for the newest version of each view (or of
    `views`); `full` starts again from the first row."""
    principal = principal or Principal.local_admin()
    chosen = [get_version(ws, v) for v in views] if views else list(latest(ws).values())
    if not chosen:
        raise UserError("no feature views are applied yet: `lathe features apply` first")
    end = (until or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(tzinfo=None)
    store = open_online_store(ws)
    catalog = CatalogStore(ws).load()
    out = []
    with connect_reader(ws) as con:
        tables = warehouse_catalog(con, catalog)
        for vv in chosen:
            vq = build_view_query(con, tables, vv.view, lineage=False)
            require_grants(tables, principal, vq)
            table = online_table(vv)
            start = None if full or not store.has(table) else watermark(ws, vv)
            if start is not None and dt.datetime.fromisoformat(start) >= end:
                out.append(Materialized(vv.ref, start, start, 0))
                continue
            rows = _latest_rows(con, vq.tree, vv, start, end)
            if full:
                store.drop(table)
            store.write(table, [f.name for f in vv.view.features], rows)
            _record(ws, vv, end.isoformat(), len(rows))
            out.append(Materialized(vv.ref, start, end.isoformat(), len(rows)))
    return out


def _latest_rows(con: duckdb.DuckDBPyConnection, view: exp.Query, vv: ViewVersion, start: str | None,
                 end: dt.datetime) -> list[tuple]:
    keys = [exp.column(exp.to_identifier(k, quoted=True), table="v") for k in vv.view.entity.keys]
    ts = exp.column(EVENT_TS, table="v")
    cond: exp.Expr = exp.LTE(this=ts, expression=exp.cast(exp.Literal.string(end.isoformat()), "TIMESTAMP"))
    if start is not None:
        cond = exp.and_(cond, exp.GT(this=ts, expression=exp.cast(exp.Literal.string(start), "TIMESTAMP")))
    newest = exp.EQ(this=exp.Window(this=exp.RowNumber(), partition_by=keys,
                                    order=exp.Order(expressions=[exp.Ordered(this=ts.copy(), desc=True)])),
                    expression=exp.Literal.number(1))
    q = (exp.select(exp.Star()).from_(view.subquery("v")).where(cond).qualify(newest)
         .where(*(exp.Not(this=exp.Is(this=k.copy(), expression=exp.Null())) for k in keys)))
    try:
        got = con.execute(q.sql(dialect="duckdb")).fetchall()
    except duckdb.Error as e:
        raise UserError(f"materializing `{vv.ref}` failed: {str(e).strip().splitlines()[0]}") from None
    n = len(keys)
    return [(online_key(r[:n]), epoch(r[n]), *(value(v) for v in r[n + 1:])) for r in got]


def _record(ws: Workspace, vv: ViewVersion, end: str, rows: int) -> None:
    ensure_schema(ws.state_path, _SCHEMA)
    with transaction(ws.state_path, immediate=True) as db:
        db.execute("INSERT INTO feature_materializations VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (name, version) DO "
                   "UPDATE SET watermark = excluded.watermark, rows = rows + excluded.rows, runs = runs + 1, "
                   "finished_at = excluded.finished_at", (vv.name, vv.version, end, rows, time.time()))

"""Point-in-time correct training sets: label rows (entity key + timestamp) joined to feature views in DuckDB
with ASOF JOIN, so each row gets the latest value at or before its timestamp and within the view's TTL.

A value whose event time is after the label's timestamp is never joined: the ASOF condition is the only way a
feature row meets a label row. Views and labels are read through the SQL guard on the sandboxed reader.
"""
from __future__ import annotations

from typing import Any

import duckdb
from sqlglot import exp

from catalog.data_source import parse_source
from catalog.derived_tables import create_derived_table
from catalog.pii_masking import mask_at_source
from catalog.query_schema import warehouse_catalog
from catalog.sql_guard import guard, unknown_in
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.features.selection import Selection, select_features
from runtimes.features.view_sql import EVENT_TS, build_view_query, require_grants

_ENTITIES = "_lathe_entities"
_ROW = "_lathe_row"


def training_set(ws: Workspace, entities: Any, features: list[str], *, timestamp_column: str = "event_timestamp",
                 principal: Principal | None = None, full_names: bool = False, into: str | None = None,
                 description: str = "") -> Any:
    """`entities` (a pandas DataFrame, a catalog table's name or one read query) with one column per feature of
    `features`, each the latest value at or before the row's `timestamp_column` within the view's TTL (NULL
    when there is none). Returns a DataFrame, or with `into` writes a derived warehouse table (labels from the
    warehouse only) and returns its catalog `Table`."""
    principal = principal or Principal.local_admin()
    selections = select_features(ws, features)
    catalog = CatalogStore(ws).load()
    frame = not isinstance(entities, str)
    if frame and into is not None:
        raise UserError("a training table is written from labels in the warehouse: give a catalog table or a "
                        "query as the labels, or leave out `into` to get a DataFrame")
    with connect_reader(ws) as con:
        tables = warehouse_catalog(con, catalog)
        views = []
        for sel in selections:
            vq = build_view_query(con, tables, sel.version.view, lineage=False)
            require_grants(tables, principal, vq)
            views.append((sel, vq.tree))
        if frame:
            columns = [str(c) for c in entities.columns]
            # Numbered here: cheaper than a window over the whole scan, and the frame's order is the order asked.
            con.register(_ENTITIES, _utc_naive(entities, timestamp_column).assign(**{_ROW: range(len(entities))}))
            source: exp.Expr = exp.select(exp.Star()).from_(_ENTITIES)
        else:
            guarded = guard(parse_source(entities, tables.tables).statement(), "duckdb", tables)
            if guarded.query is None:
                raise UserError("the labels must be a catalog table or one SELECT query")
            source = guarded.tree if into is not None or principal.is_admin else mask_at_source(
                guarded.tree, principal, tables)
            described = con.execute(exp.Describe(this=source.copy()).sql(dialect="duckdb")).fetchall()
            columns = [r[0] for r in described]
        tree = _pit_query(source, columns, views, timestamp_column, full_names, numbered=frame)
        sql = tree.sql(dialect="duckdb")
        if into is None:
            try:
                return con.execute(sql).df()
            except duckdb.Error as e:
                raise UserError(f"the training set could not be built: {str(e).strip().splitlines()[0]}") from None
    refs = ", ".join(f"{s.version.ref}" for s, _ in views)
    return create_derived_table(ws, into, sql, principal=principal,
                                description=description or f"training set: labels joined to features {refs}")


def _utc_naive(frame: Any, column: str) -> Any:
    """Label times with a zone as UTC without one, as the warehouse's timestamps are: DuckDB would otherwise compare
    them through the session's time zone."""
    import pandas as pd

    col = frame[column] if column in frame.columns else None
    if col is None or not isinstance(col.dtype, pd.DatetimeTZDtype):
        return frame
    return frame.assign(**{column: col.dt.tz_convert("UTC").dt.tz_localize(None)})


def _pit_query(source: exp.Expr, columns: list[str], views: list[tuple[Selection, exp.Expr]], ts: str,
               full_names: bool, numbered: bool) -> exp.Query:
    """SELECT labels, features FROM (labels numbered) ASOF LEFT JOIN (each view's query), in the labels' order."""
    low = {c.lower(): c for c in columns}
    if ts.lower() not in low:
        raise UserError(unknown_in("column", ts, columns, "the labels") + " (the label timestamp: pass "
                        "timestamp_column / --timestamp-column)")
    ts = low[ts.lower()]
    e = "e"
    outputs: list[exp.Expr] = [exp.column(exp.to_identifier(c, quoted=True), table=e) for c in columns]
    seen = set(low)
    joins = []
    # Subqueries, not CTEs: a CTE's name would shadow a catalog table of that name inside the views' queries.
    labels = source if numbered else exp.select(exp.Star(), exp.Window(this=exp.RowNumber()).as_(_ROW)).from_(
        source.subquery("s"))
    for i, (sel, view_tree) in enumerate(views):
        view = sel.version.view
        alias = f"f{i}"
        equal = []
        for key in view.entity.keys:
            if key.lower() not in low:
                raise UserError(unknown_in("column", key, columns, "the labels") + f" (an entity key of feature view "
                                f"`{view.name}`)")
            equal.append(exp.EQ(this=exp.column(exp.to_identifier(low[key.lower()], quoted=True), table=e),
                                expression=exp.column(exp.to_identifier(key, quoted=True), table=alias)))
        on = exp.and_(*equal, exp.GTE(this=exp.column(exp.to_identifier(ts, quoted=True), table=e),
                                      expression=exp.column(EVENT_TS, table=alias)))
        joins.append(exp.Join(this=view_tree.subquery(alias), on=on, method="ASOF", side="LEFT"))
        ttl = view.ttl_delta
        for f in sel.features:
            name = f"{view.name}__{f.name}" if full_names else f.name
            if name.lower() in seen:
                raise UserError(f"two columns would be named `{name}` (a label column or another view's feature); "
                                "ask for full names (`view__feature`) or rename one")
            seen.add(name.lower())
            value: exp.Expr = exp.column(exp.to_identifier(f.name, quoted=True), table=alias)
            if ttl is not None:
                # ASOF took the latest row at or before the label; older than the TTL means no valid value.
                fresh = exp.GTE(this=exp.column(EVENT_TS, table=alias), expression=exp.Sub(
                    this=exp.column(exp.to_identifier(ts, quoted=True), table=e),
                    expression=exp.Interval(this=exp.Literal.string(str(int(ttl.total_seconds()))),
                                            unit=exp.var("SECOND"))))
                value = exp.Case(ifs=[exp.If(this=fresh, true=value)])
            outputs.append(value.as_(name, quoted=True))
    query = exp.select(*outputs).from_(labels.subquery(e))
    for j in joins:
        query = query.join(j)
    return query.order_by(exp.column(_ROW, table=e))

"""One feature view as a guarded read query over the warehouse: its entity key columns, `event_timestamp` and each
feature cast to its declared type, with the lineage of every output column to its source columns.

The query is built as a sqlglot tree and admitted by the catalog's SQL guard like any read; reading a PII
column needs the grant a query would need. It runs nothing but DESCRIBE (binding) on the sandboxed reader.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from catalog.column_lineage import lineage_by_position
from catalog.metadata import Catalog
from catalog.pii_masking import hidden_pii
from catalog.sql_guard import guard
from core.errors import UserError
from core.principal import Principal
from runtimes.features.definitions import FEATURE_TYPES, FeatureView

EVENT_TS = "event_timestamp"
_TIME_TYPES = ("TIMESTAMP", "DATE")


@dataclass
class ViewQuery:
    """The admitted query of one view: output columns are the join keys, `event_timestamp`, then the features."""
    view: FeatureView
    tree: exp.Query
    lineage: dict[str, list[str]] = field(default_factory=dict)  # output column → `table.column` sources
    read: set[str] = field(default_factory=set)  # every `table.column` the query names

    @property
    def sql(self) -> str:
        return self.tree.sql(dialect="duckdb")


def build_view_query(con: duckdb.DuckDBPyConnection, tables: Catalog, view: FeatureView, *,
                     lineage: bool = True) -> ViewQuery:
    """The view's query, guarded against `tables` (the warehouse's catalog) and bound on `con`; a bad name,
    expression or type is a `UserError` that names the view and the field. `lineage=False` skips tracing the
    columns (the grants are checked on every column the query reads either way)."""
    src = view.source.source
    if src.kind == "table":
        from_: exp.Expr = exp.to_table(exp.to_identifier(src.name, quoted=True)).as_("src")
    else:
        try:
            inner = sqlglot.parse_one(src.sql, read="duckdb")
        except SqlglotError as e:
            raise UserError(f"feature view `{view.name}`: source.sql does not parse: {str(e).splitlines()[0]}") from None
        if not isinstance(inner, exp.Query):
            raise UserError(f"feature view `{view.name}`: source.sql must be one SELECT or WITH query")
        from_ = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("src")))
    keys = view.entity.keys
    cols = [*(_col(k).as_(k, quoted=True) for k in keys), _col(view.event_time).as_(EVENT_TS, quoted=True)]
    for f in view.features:
        try:
            e = sqlglot.parse_one(f.sql_expr, read="duckdb") if f.expr else _col(f.name)
        except SqlglotError as err:
            raise UserError(f"feature view `{view.name}`: feature `{f.name}`: expr does not parse: "
                            f"{str(err).splitlines()[0]}") from None
        cols.append(exp.cast(e, FEATURE_TYPES[f.type]).as_(f.name, quoted=True))
    tree = exp.select(*cols).from_(from_)
    try:
        guarded = guard(tree.sql(dialect="duckdb"), "duckdb", tables)
    except UserError as e:
        raise UserError(f"feature view `{view.name}`: {e}") from None
    if guarded.query is None or guarded.kind != "SELECT":
        raise UserError(f"feature view `{view.name}`: the source must be a table or one SELECT query")
    try:
        described = con.execute(exp.Describe(this=guarded.tree.copy()).sql(dialect="duckdb")).fetchall()
    except duckdb.Error as e:
        raise UserError(f"feature view `{view.name}`: DuckDB cannot read it: {str(e).strip().splitlines()[0]}") from None
    ts_type = str(described[len(keys)][1]).upper()
    if not ts_type.startswith(_TIME_TYPES):
        raise UserError(f"feature view `{view.name}`: event_time `{view.event_time}` is {ts_type}; it must be a "
                        "TIMESTAMP or DATE column")
    outputs = lineage_by_position(guarded.query, guarded.schema) if lineage else []
    return ViewQuery(view=view, tree=guarded.tree, read=set(guarded.columns),
                     lineage={o.name: o.sources for o in outputs})


def require_grants(tables: Catalog, principal: Principal, vq: ViewQuery) -> None:
    """Refuse a view that reads PII `principal` may not see (anywhere in its query), naming the grant needed."""
    hidden = hidden_pii(tables, principal, vq.read | {s for v in vq.lineage.values() for s in v})
    if hidden:
        cols = ", ".join(f"{c} (pii: {tag})" for c, tag in sorted(hidden.items()))
        grants = " or ".join(sorted({f"`pii:{tag}`" for tag in hidden.values()}))
        raise UserError(f"feature view `{vq.view.name}` reads PII you have no grant for: {cols}; ask an admin "
                        f"for the grant {grants} (or `pii`)")


def _col(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True), table=exp.to_identifier("src"))

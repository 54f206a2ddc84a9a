"""Derived tables: the one explicit write path from a SELECT to a new warehouse table (`CREATE TABLE … AS`).

The SELECT passes the same guard as any read and is bound on the sandboxed reader first; the table, its
metadata (PII tags carried over from its sources) and each column's lineage land together or not at all:
the DuckDB transaction commits only once the catalog change is staged. It never replaces a table that
was not itself derived.
"""
from __future__ import annotations

import datetime as dt

import duckdb
from sqlglot import exp

from catalog.column_lineage import OutputLineage, lineage_by_position
from core.errors import UserError
from catalog.metadata import Catalog, Column, ColumnLineage, PiiTag, Table
from core.principal import Principal
from catalog.query_schema import warehouse_catalog
from catalog.sql_guard import guard
from catalog.store import CatalogStore, CatalogTransaction
from catalog.warehouse import connect_reader, connect_writer
from core.workspace import Workspace

DERIVED = "derived"
_QUERIES = ("SELECT", "UNION", "INTERSECT", "EXCEPT")


def create_derived_table(ws: Workspace, name: str, select_sql: str, *, principal: Principal,
                         dialect: str | None = None, description: str = "", replace: bool = False) -> Table:
    """Create warehouse table `name` from a read query and record it in the catalog; returns its metadata."""
    _check_name(name)
    store = CatalogStore(ws)
    catalog = store.load()
    with connect_reader(ws) as con:
        tables = warehouse_catalog(con, catalog)
        guarded = guard(select_sql, dialect, tables)
        if guarded.kind not in _QUERIES or guarded.query is None:
            raise UserError(f"a derived table is made from a SELECT, not from {guarded.kind}")
        if name.lower() in {t.lower() for t in guarded.tables}:
            raise UserError(f"the query for `{name}` reads `{name}` itself; derive a table with a new name")
        existing = tables.table(name)
        if existing is not None and not replace:
            raise UserError(f"table `{existing.name}` already exists; pass replace (`--replace`) to rebuild it")
        if existing is not None and existing.source != DERIVED:
            raise UserError(f"table `{existing.name}` was not derived (its source is "
                            f"{existing.source or 'not recorded'}); only derived tables can be replaced")
        try:
            # Binding in the sandbox first: anything that would reach outside fails here, not on the writer.
            described = con.execute(exp.Describe(this=guarded.tree.copy()).sql(dialect="duckdb")).fetchall()
        except duckdb.Error as e:
            raise UserError(f"DuckDB cannot run the query for `{name}`: {_first_line(e)}") from None
    outputs = lineage_by_position(guarded.query, guarded.schema)
    private = lineage_by_position(guarded.query, guarded.schema, ignore_counted=True)
    if len(described) != len(outputs):
        raise UserError(f"cannot match the query's {len(described)} columns to their sources; "
                        "name every output column explicitly (… AS name)")
    names = [row[0] for row in described]
    if len({n.lower() for n in names}) != len(names):
        raise UserError(f"the query for `{name}` has two output columns of the same name ({', '.join(names)}); "
                        "give each a distinct alias")
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    query_sql = guarded.sql
    lineage = [ColumnLineage(table=name, column=n, sources=o.sources, sql=query_sql, created_at=now)
               for n, o in zip(names, outputs)]
    kept = [x for x in catalog.lineage if x.table.lower() != name.lower()]

    create = exp.Create(this=exp.to_table(exp.to_identifier(name, quoted=True)), kind="TABLE",
                        expression=guarded.tree.copy(), replace=replace)
    txn = CatalogTransaction(store)
    with connect_writer(ws) as con:
        # Defence in depth: the guarded SELECT needs no file, so the writer gives up file access too.
        con.execute("SET enable_external_access = false")
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(create.sql(dialect="duckdb"))
            count = exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(exp.to_identifier(name, quoted=True)))
            row_count = con.execute(count.sql(dialect="duckdb")).fetchall()[0][0]
            table = Table(
                name=name, description=description, owner=principal.name, source=DERIVED, tags=[DERIVED],
                row_count=row_count,
                columns=[Column(name=n, type=str(row[1]), pii=_pii_tag(tables, p, guarded.columns, guarded.tables))
                         for n, row, p in zip(names, described, private)])
            txn.put_table(table)
            txn.put_lineage(kept + lineage)
            txn.stage()
            con.execute("COMMIT")
        except BaseException as e:
            txn.abort()
            _rollback(con)
            if isinstance(e, duckdb.Error):
                raise UserError(f"creating `{name}` failed, nothing was changed: {_first_line(e)}") from None
            raise
    txn.apply()
    return table


def _pii_tag(catalog: Catalog, out: OutputLineage, read: set[str], tables: set[str]) -> PiiTag | None:
    """A derived column carries the PII tag of the first PII column it shows (counts show none); where
    lineage cannot see inside, of the first PII column the query reads at all; where that names none
    but the tables read hold PII, the derived table is refused rather than left untagged."""
    for ref in sorted(out.sources) + (sorted(read) if out.uncertain else []):
        table, _, column = ref.partition(".")
        t = catalog.table(table)
        c = t.column(column) if t else None
        if c is not None and c.pii is not None:
            return c.pii
    if out.uncertain:
        pii = sorted(f"{t.name}.{c.name}" for name in tables if (t := catalog.table(name))
                     for c in t.columns if c.pii is not None)
        if pii:
            raise UserError(f"cannot tell which columns feed `{out.name}`, and the tables read hold PII "
                            f"({', '.join(pii)}); list the columns by name")
    return None


def _check_name(name: str) -> None:
    if not (name.isascii() and name.isidentifier()):
        raise UserError(f"`{name}` is not a usable table name: use letters, digits and underscores, "
                        "starting with a letter (e.g. monthly_revenue)")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # the failed statement already ended the transaction


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

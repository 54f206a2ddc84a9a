"""The tables a query may name: the warehouse's own tables and columns, with the catalog's metadata on them.

The warehouse decides what exists (and each column's type); the catalog adds PII tags and descriptions.
It only reads; it never creates or changes a table or a catalog file.
"""
from __future__ import annotations

import duckdb

from catalog.metadata import Catalog, Column, Table

# Fixed text, no user input: DuckDB's own listing of the default database's columns.
_COLUMNS_SQL = """
SELECT table_name, column_name, data_type
FROM duckdb_columns()
WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal
ORDER BY table_name, column_index
"""


def warehouse_catalog(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> Catalog:
    """`catalog` narrowed to the tables the warehouse holds, with the warehouse's columns and types;
    a table the catalog does not describe yet appears with bare columns."""
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, type_ in con.execute(_COLUMNS_SQL).fetchall():
        found.setdefault(table, []).append((column, type_))
    tables: dict[str, Table] = {}
    for name, cols in found.items():
        known = catalog.table(name)
        columns = []
        for col, type_ in cols:
            meta = known.column(col) if known else None
            columns.append(meta.model_copy(update={"type": type_}) if meta else Column(name=col, type=type_))
        tables[name] = (known.model_copy(update={"name": name, "columns": columns}) if known
                        else Table(name=name, columns=columns))
    return catalog.model_copy(update={"tables": tables})


def sqlglot_schema(catalog: Catalog) -> dict[str, dict[str, str]]:
    """{table: {column: type}} for `sqlglot.optimizer.qualify` and `sqlglot.lineage`."""
    return {t.name: {c.name: c.type or "UNKNOWN" for c in t.columns} for t in catalog.tables.values()}

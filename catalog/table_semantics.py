"""A proposed semantic model for a table that has none (an imported or uploaded data file): the primary key
as entity, low-cardinality text and boolean columns as categorical dimensions, date columns as time
dimensions, numeric columns as summed measures (each with a simple metric), and a row count.

Written as MetricFlow YAML beside the other semantic files, so a metric question works on the table at once;
it proposes only what the column types and distinct counts say, and the file can be edited like any other.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import duckdb
from sqlglot import exp

MAX_CATEGORIES = 50  # a text column with more distinct values than this is a label, not a dimension
_NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|REAL|"
                      r"DOUBLE|DECIMAL|NUMERIC)", re.IGNORECASE)
_TIME = re.compile(r"^(DATE|TIMESTAMP)", re.IGNORECASE)
_TEXT = re.compile(r"^(VARCHAR|TEXT|STRING|BOOLEAN|BOOL|ENUM)", re.IGNORECASE)


def entity_name(table: str) -> str:
    """`deals` -> `deal`: what one row of the table is."""
    base = table.lower()
    return base[:-3] + "y" if base.endswith("ies") else base[:-1] if base.endswith("s") and len(base) > 3 else base


def primary_key(table: str, columns: Sequence[tuple[str, str]], unique: set[str], declared: Sequence[str] = ()) -> str | None:
    """The declared key, else `id` / `<entity>_id` / the first `*_id` column whose values are unique."""
    if len(declared) == 1:
        return declared[0]
    names = [c for c, _ in columns]
    for candidate in ("id", f"{entity_name(table)}_id", f"{table.lower()}_id"):
        found = next((n for n in names if n.lower() == candidate and n in unique), None)
        if found:
            return found
    return next((n for n in names if n.lower().endswith("_id") and n in unique), None)


def propose(table: str, columns: Sequence[tuple[str, str]], distinct: dict[str, int], rows: int,
            declared_key: Sequence[str] = ()) -> dict[str, Any]:
    """MetricFlow YAML data (`semantic_models` and `metrics`) for `table`, from its (name, type) columns,
    distinct counts per column and row count."""
    unique = {c for c, n in distinct.items() if rows and n == rows}
    key = primary_key(table, columns, unique, declared_key)
    entity = entity_name(table)
    dims: list[dict[str, Any]] = []
    measures: list[dict[str, Any]] = [{"name": f"{table}_rows", "agg": "sum", "expr": "1",
                                       "description": f"Rows of {table}."}]
    metrics: list[dict[str, Any]] = [{"name": f"{table}_rows", "label": f"number of {table}", "type": "simple",
                                      "type_params": {"measure": f"{table}_rows"}}]
    time_dim = None
    for name, dtype in columns:
        if name == key:
            continue
        if _TIME.match(dtype):
            dims.append({"name": name, "type": "time", "type_params": {"time_granularity": "day"}})
            time_dim = time_dim or name
        elif _NUMERIC.match(dtype) and not name.lower().endswith("_id"):
            measures.append({"name": f"{table}_{name}", "agg": "sum", "expr": name})
            metrics.append({"name": f"{table}_{name}", "label": f"{table} {name.replace('_', ' ')}", "type": "simple",
                            "type_params": {"measure": f"{table}_{name}"}})
        elif _TEXT.match(dtype) and distinct.get(name, MAX_CATEGORIES + 1) <= MAX_CATEGORIES:
            dims.append({"name": name, "type": "categorical"})
    model: dict[str, Any] = {"name": table, "description": f"Proposed from the columns of {table}; edit freely.",
                             "model": f"ref('{table}')",
                             "entities": [{"name": entity, "type": "primary", **({"expr": key} if key else {})}]}
    if key is None:
        model["entities"] = []
        model["primary_entity"] = entity
    if time_dim is not None:
        model["defaults"] = {"agg_time_dimension": time_dim}
        for m in measures:
            m["agg_time_dimension"] = time_dim
    model["dimensions"] = dims
    model["measures"] = measures
    return {"semantic_models": [model], "metrics": metrics}


def propose_from_warehouse(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, Any]:
    """The proposal for a warehouse table, reading its column types and distinct counts."""
    columns = [(r[0], r[1]) for r in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table]).fetchall()]
    counts = [exp.func("count", exp.Star()).as_("n")] + [
        exp.Count(this=exp.Distinct(expressions=[exp.column(c, quoted=True)])).as_(f"d{i}") for i, (c, _) in enumerate(columns)]
    row = con.execute(exp.select(*counts).from_(exp.to_table(table, quoted=True)).sql("duckdb")).fetchone() or (0,)
    distinct = {c: int(row[i + 1]) for i, (c, _) in enumerate(columns)}
    return propose(table, columns, distinct, int(row[0]))


def has_model(manifest: Any, table: str) -> bool:
    return any(m.table.lower() == table.lower() for m in manifest.semantic_models)


def proposals(con: duckdb.DuckDBPyConnection, manifest: Any, tables: Sequence[str],
              imported: Sequence[Any] = ()) -> list[tuple[str, dict[str, Any]]]:
    """(semantic file name, YAML data) for each table that no semantic model covers (neither the workspace's
    nor those being `imported`), metrics whose names are taken left out."""
    for other in imported:
        manifest = manifest.merged(other)
    taken = {m.name for m in manifest.metrics} | {ms.name for sm in manifest.semantic_models for ms in sm.measures}
    out = []
    for table in tables:
        if has_model(manifest, table):
            continue
        data = propose_from_warehouse(con, table)
        data["metrics"] = [m for m in data["metrics"] if m["name"] not in taken]
        out.append((f"proposed_{table}", data))
    return out

"""Data files (CSV, Parquet, JSON / NDJSON) into warehouse tables, with DuckDB's sniffer choosing the types.

Runs on a writer connection inside the caller's transaction and never commits; every problem with a
file (ragged CSV row, unreadable Parquet, JSON that is not records) is a `UserError` naming file and line.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from core.errors import UserError
from catalog.importers.discovery import COMPRESSED, DataFile

_READERS = {"csv": "read_csv", "parquet": "read_parquet", "json": "read_json", "ndjson": "read_json"}
_reject_names = itertools.count()


class DataFileError(UserError):
    """A data file that cannot be imported as a table."""


@dataclass(frozen=True)
class LoadedTable:
    name: str
    source: str
    rows: int
    replaced: bool


def _value(v: object) -> exp.Expression:
    if isinstance(v, bool):
        return exp.Boolean(this=v)
    if isinstance(v, int):
        return exp.Literal.number(v)
    return exp.Literal.string(str(v))


def reader(f: DataFile, **options: object) -> exp.Table:
    """`read_csv('path', k = v, ...)` (or the Parquet / JSON reader) as a table expression."""
    opts: dict[str, object] = {}
    if f.format in ("json", "ndjson"):
        # Records only: a file of bare values or arrays is refused by DuckDB instead of becoming one `json` column.
        opts = {"records": True, "format": "newline_delimited" if f.format == "ndjson" else "auto"}
    opts.update(options)
    args = [exp.Literal.string(str(f.path))] + [exp.EQ(this=exp.column(k), expression=_value(v)) for k, v in opts.items()]
    return exp.Table(this=exp.Anonymous(this=_READERS[f.format], expressions=args))


def _ident(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def _rejects_options() -> dict[str, object]:
    n = next(_reject_names)
    return {"store_rejects": True, "rejects_table": f"lathe_rejects_{n}", "rejects_scan": f"lathe_reject_scans_{n}"}


def check(con: duckdb.DuckDBPyConnection, f: DataFile) -> None:
    """Read the file's shape (sniffed columns and types) without loading it: the fast first check."""
    if f.path.stat().st_size == 0:
        raise DataFileError(f"{f.path}: the file is empty")
    options = _rejects_options() if f.format == "csv" else {}
    _run(con, f, exp.Describe(this=exp.select("*").from_(reader(f, **options))))


def load(con: duckdb.DuckDBPyConnection, f: DataFile, existing: set[str]) -> LoadedTable:
    """Create or replace table `f.table` from the file; CSV rows DuckDB rejects are an error with their line."""
    replaced = f.table.lower() in existing
    if f.format == "csv":
        _load_csv(con, f)
    else:
        _run(con, f, _create(f.table, reader(f)))
    rows = con.execute(exp.select(exp.func("count", exp.Star())).from_(_ident(f.table)).sql("duckdb")).fetchone()
    return LoadedTable(f.table, str(f.path), int(rows[0]) if rows else 0, replaced)


def _create(table: str, source: exp.Table) -> exp.Create:
    return exp.Create(this=_ident(table), kind="TABLE", replace=True, expression=exp.select("*").from_(source))


def _load_csv(con: duckdb.DuckDBPyConnection, f: DataFile) -> None:
    # With store_rejects DuckDB's sniffer tolerates bad rows and records each with its line, which a
    # plain read does not (a ragged row inside the sniff sample silently turns the file into one column).
    for sample_size in (None, -1):
        opts = _rejects_options()
        if sample_size is not None:
            opts["sample_size"] = sample_size
        _run(con, f, _create(f.table, reader(f, **opts)))
        rejects = _rejects(con, str(opts["rejects_table"]))
        # Values the sniff sample did not see (text in a column typed from numbers) are a sniffing limit,
        # not bad data: sniff the whole file once more before calling them errors.
        if rejects is None or sample_size == -1 or rejects[0][2] != "CAST":
            break
    if rejects is not None:
        (line, _column, kind, text, message), total = rejects
        what = {"MISSING COLUMNS": "too few values", "TOO MANY COLUMNS": "too many values"}.get(str(kind), str(kind).lower())
        more = f" (and {total - 1} more bad line{'s' if total > 2 else ''})" if total > 1 else ""
        raise DataFileError(f"{f.path}:{line}: {what} ({message}); the line reads `{_clip(text)}`{more}. "
                            "Fix the line (or remove it) and import again")
    _check_quotes(con, f)


def _check_quotes(con: duckdb.DuckDBPyConnection, f: DataFile) -> None:
    """Refuse a value that opens a quote and never closes it. DuckDB's sniffer then reads the file as unquoted
    and keeps the quote as text, so every row loads and the damage would go unnoticed."""
    texts = [c for c, t in con.execute(exp.select("column_name", "data_type").from_("duckdb_columns()")
                                       .where(exp.column("table_name").eq(exp.Literal.string(f.table)))
                                       .where("schema_name = 'main' AND database_name = current_database()")
                                       .sql("duckdb")).fetchall() if t == "VARCHAR"]
    if not texts:
        return
    odd = [f"(starts_with({q}, '\"') AND (length({q}) - length(replace({q}, '\"', ''))) % 2 = 1)"
           for q in (exp.to_identifier(c, quoted=True).sql("duckdb") for c in texts)]
    row = con.execute(f"SELECT {', '.join(exp.to_identifier(c, quoted=True).sql('duckdb') for c in texts)} "
                      f"FROM {_ident(f.table).sql('duckdb')} WHERE {' OR '.join(odd)} LIMIT 1").fetchone()
    if row is None:
        return
    value = next(v for v in row if isinstance(v, str) and v.startswith('"') and v.count('"') % 2 == 1)
    line = _line_with(f, value)
    where = f"{f.path}:{line}" if line else str(f.path)
    raise DataFileError(f"{where}: a quoted value is never closed (it reads `{_clip(value, 40)}`); close the quote "
                        "(a quote inside a quoted value is written twice: \"\") and import again")


def _line_with(f: DataFile, text: str) -> int | None:
    """The first line of the file holding `text` (only on the error path: it reads the file once more)."""
    if f.path.suffix.lower() in COMPRESSED:
        return None
    with open(f.path, encoding="utf-8", errors="replace") as lines:
        return next((n for n, line in enumerate(lines, start=1) if text in line), None)


def _rejects(con: duckdb.DuckDBPyConnection, table: str) -> tuple[tuple, int] | None:
    """The first rejected line (line, column, kind, text, message) and how many lines were rejected."""
    t = exp.table_(table, db="main", catalog="temp")
    first = con.execute(exp.select("line", "column_name", "error_type", "csv_line", "error_message")
                        .from_(t).order_by("line").limit(1).sql("duckdb")).fetchone()
    if first is None:
        return None
    # A line can be rejected for several columns; count lines, not rejections.
    lines = con.execute(exp.select(exp.Count(this=exp.Distinct(expressions=[exp.column("line")])))
                        .from_(t).sql("duckdb")).fetchone()
    return first, int(lines[0]) if lines else 1


def _clip(text: str | None, n: int = 80) -> str:
    text = (text or "").rstrip("\r\n")
    return text if len(text) <= n else text[: n - 1] + "…"


def _run(con: duckdb.DuckDBPyConnection, f: DataFile, statement: exp.Expression) -> None:
    try:
        con.execute(statement.sql("duckdb"))
    except duckdb.Error as e:
        raise DataFileError(_explain(f, e)) from None


def _explain(f: DataFile, e: duckdb.Error) -> str:
    full = str(e)
    first = full.split("\n", 1)[0]
    kind, sep, rest = first.partition(" Error: ")
    msg = rest if sep and len(kind) < 30 else first
    if "Existing object" in first:  # a view (or other object) of the table's name
        return f"{f.path}: cannot replace `{f.table}` with this file's table: {msg}"
    if f.format in ("json", "ndjson"):
        if "expected records" in full:
            return (f"{f.path}: JSON that is not records: Lathe imports an array of objects, one object, "
                    "or one object per line (NDJSON), each object a row")
        line = _json_error_line(f)
        where = f"{f.path}:{line}" if line else str(f.path)
        return f"{where}: malformed JSON: {msg.strip()}"
    if f.format == "parquet":
        return f"{f.path}: not a readable Parquet file: {msg}"
    return f"{f.path}: cannot read as {f.format.upper()}: {msg}"


def _json_error_line(f: DataFile) -> int | None:
    """The line of the first JSON syntax error: DuckDB names only a byte inside a record, so parse here.

    Runs only after DuckDB has refused the file, so the cost of a second parse is paid on errors alone.
    """
    if f.path.suffix.lower() in COMPRESSED:
        return None
    text = f.path.read_text(encoding="utf-8", errors="replace")
    try:
        if f.format == "ndjson":
            for n, row in enumerate(text.splitlines(), start=1):
                if row.strip():
                    try:
                        json.loads(row)
                    except json.JSONDecodeError:
                        return n
        else:
            json.loads(text)
    except json.JSONDecodeError as e:
        return e.lineno
    return None

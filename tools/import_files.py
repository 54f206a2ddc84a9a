"""Tool: import files uploaded to the workspace's `uploads/` folder as warehouse tables, or replace tables.

A write (it waits for approval); it reads only CSV, TSV and Parquet files that resolve inside `uploads/`.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
from pydantic import BaseModel, Field

from core.errors import UserError
from catalog.importers.discovery import DataFile, data_format, table_name_for
from catalog.importers.data_files import reader
from catalog.warehouse import connect_reader
from tools.base import LatheTool, ToolArgs, ToolOutput, principal_or_local
from tools.risk import Risk

UPLOADS = "uploads"
_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


class ImportFilesArgs(ToolArgs):
    paths: list[str] = Field(..., min_length=1, max_length=20,
                             description="files in the workspace's uploads folder, e.g. uploads/orders.csv")
    replace: bool = Field(False, description="replace tables of the same names (their catalog metadata is kept)")


class ImportFiles(LatheTool):
    name: str = "import_files"
    description: str = ("Import CSV, TSV or Parquet files from the workspace's uploads folder as warehouse tables "
                        "named after the files; with replace=true an existing table's rows are replaced (its "
                        "catalog metadata is kept). Changes the warehouse: needs approval.")
    args_schema: type[BaseModel] = ImportFilesArgs
    risk = Risk.write

    def uploads_dir(self) -> Path:
        return self.workspace.root / UPLOADS

    def files(self, paths: list[str]) -> list[Path]:
        """Each path resolved (links followed) inside `uploads/`, a CSV, TSV or Parquet file that exists."""
        base = self.uploads_dir().resolve()
        out = []
        for p in paths:
            path = Path(p) if Path(p).is_absolute() else self.workspace.root / p
            real = path.resolve()
            if not real.is_relative_to(base) or real == base:
                raise UserError(f"{p}: only files inside the uploads folder ({UPLOADS}/) can be imported from the "
                                f"chat, e.g. {UPLOADS}/orders.csv")
            if not real.name.lower().endswith(_SUFFIXES):
                raise UserError(f"{p}: upload CSV, TSV or Parquet files (named .csv, .tsv, .parquet or .pq)")
            if not real.is_file():
                raise UserError(f"{p}: no such file in the uploads folder ({UPLOADS}/)")
            out.append(real)
        return out

    def estimate(self, args: BaseModel) -> str:
        paths: list[str] = getattr(args, "paths", [])
        files = self.files(paths)
        with connect_reader(self.workspace) as con:
            existing = {r[0].lower() for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
            parts = []
            for shown, f in zip(paths, files):
                table = table_name_for(f)
                rows = _rows(f)
                if table in existing:
                    now = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                    verb = f"replaces table `{table}` ({now:,} rows now)" if getattr(args, "replace", False) \
                        else f"would replace table `{table}` (refused without replace)"
                    parts.append(f"{verb} with {rows:,} rows from {shown}")
                else:
                    parts.append(f"creates table `{table}` with {rows:,} rows from {shown}")
        return "; ".join(parts)

    def _run(self, paths: list[str], replace: bool = False) -> ToolOutput:
        from catalog.importers import import_paths

        files = self.files(paths)
        report = import_paths(self.workspace, files, replace=replace, principal=principal_or_local(self.principal))
        base = f"{self.uploads_dir().resolve()}/"
        lines = [line.replace(base, f"{UPLOADS}/") for line in report.lines()]
        return ToolOutput(text="\n".join(lines), data={"tables": [table_name_for(f) for f in files]})


def _rows(path: Path) -> int:
    """The file's data rows, read by the same DuckDB reader the import uses."""
    fmt = data_format(path) or "csv"
    sql = f"SELECT count(*) FROM {reader(DataFile(path=path, format=fmt, table=table_name_for(path))).sql('duckdb')}"
    try:
        with duckdb.connect() as con:
            return int(con.execute(sql).fetchone()[0])
    except duckdb.Error as e:
        raise UserError(f"{path.name}: cannot be read as {fmt.upper()}: {str(e).splitlines()[0]}") from None

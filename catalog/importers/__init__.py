"""`import_paths`: data files, MetricFlow projects, dbt `schema.yml` and Lathe YAML into the workspace.

All or nothing: every path is read and validated first, then the warehouse and the catalog change as one
`warehouse_change`; after any error, or a crash at any point, neither has changed (or both have).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from core.errors import UserError
from catalog import table_semantics
from catalog.importers import data_files, dbt_schema, lathe_yaml, metricflow_project
from catalog.importers.catalog_changes import CatalogChanges, WarehouseColumns
from catalog.importers.discovery import Discovered, YamlFile, discover
from catalog.importers.report import ImportReport, MetadataImport, SemanticImport
from catalog.metadata import Table
from core.principal import Principal
from catalog.store import CatalogStore
from catalog.warehouse_change import warehouse_change
from core.workspace import Workspace
from core.yaml_files import load_documents

__all__ = ["ImportReport", "import_paths"]

_COLUMNS_SQL = """
SELECT table_name, column_name, data_type FROM duckdb_columns()
WHERE database_name = current_database() AND schema_name = 'main'
ORDER BY table_name, column_index
"""

# Top-level keys of files this import reads but does not take, each with what to tell the user.
_IGNORED_KEYS = {
    "saved_queries": "saved queries are not imported",
    "saved_query": "saved queries are not imported",
    "sources": "dbt sources are not imported (import the tables' data instead)",
    "project_configuration": "MetricFlow project configuration is not imported",
    "lineage": "column lineage is computed by Lathe, not imported",
}


@dataclass
class _Read:
    """Everything the YAML files said, parsed and validated, before anything is written."""
    lathe: list[lathe_yaml.LatheMetadata] = field(default_factory=list)
    dbt: list[tuple[Path, list[tuple[Table, int | None]]]] = field(default_factory=list)
    semantic_files: list[YamlFile] = field(default_factory=list)


def import_paths(ws: Workspace, paths: list[Path], *, replace: bool = False,
                 principal: Principal | None = None) -> ImportReport:
    """Import files and directories; a data file whose table exists is an error unless `replace` is set.

    `principal` (default: the local user) is who imports: removing or changing a PII tag needs an admin."""
    principal = principal or Principal.local_admin()
    ws.require()
    if not paths:
        raise UserError("nothing to import: give one or more files or directories")
    found = discover([Path(p) for p in paths])
    report = ImportReport(notes=list(found.notes))
    read = _read_yaml(found, report)
    projects = metricflow_project.read_projects(read.semantic_files)
    store = CatalogStore(ws)

    # One recoverable unit: the data, their catalog entries and the semantic files commit together or not at all.
    with warehouse_change(ws) as (con, txn):
        before = _warehouse_columns(con)
        for d in found.data:
            data_files.check(con, d)
        if not replace:
            taken = [d for d in found.data if d.table in before]
            if taken:
                raise UserError(f"table `{before[taken[0].table][0]}` already exists in the warehouse "
                                f"({taken[0].path} would replace its data); import with --replace to replace "
                                "it (its metadata is kept), or rename the file")
        names = [n for n, _ in before.values()] + [d.table for d in found.data if d.table not in before]
        for p in projects:
            metricflow_project.check_tables(p, names)
        earlier = metricflow_project.check_clashes(projects, ws.catalog_dir / "semantic")

        loaded = [data_files.load(con, d, set(before)) for d in found.data]
        after = _warehouse_columns(con) if loaded else before
        changes = _catalog_changes(store, after, loaded, read, report)
        changes.check_pii(principal)
        changes.stage(txn)
        for name, proposal in table_semantics.proposals(con, store.load_semantic(), [t.name for t in loaded],
                                                        [p.manifest for p in projects]):
            txn.put_semantic(name, proposal)  # tables without a semantic model get a proposed one
        for p in projects:
            txn.put_semantic(p.name, p.manifest)
            report.semantic.append(SemanticImport(
                project=p.name, catalog_file=p.catalog_file, files=[str(f) for f in p.files],
                **metricflow_project.changes(earlier[p.name], p.manifest)))
    return report


def _read_yaml(found: Discovered, report: ImportReport) -> _Read:
    out = _Read()
    for yf in found.yaml:
        used = False
        for data, lines in load_documents(yf.path):
            if not isinstance(data, dict):
                continue
            if metricflow_project.has_semantic_content(data):
                if not out.semantic_files or out.semantic_files[-1] is not yf:
                    out.semantic_files.append(yf)
                used = True
            if "models" in data:
                out.dbt.append((yf.path, dbt_schema.read_models(data, lines, yf.path)))
                used = True
            if lathe_yaml.is_lathe_document(data):
                out.lathe.append(lathe_yaml.read(data, lines, yf.path))
                used = True
            for key, why in _IGNORED_KEYS.items():
                if key in data:
                    report.notes.append(f"ignored `{key}:` in {yf.path}: {why}")
                    used = True
        if not used:
            report.notes.append(f"skipped {yf.path}: no catalog content (semantic_models, metrics, models, "
                                "tables, glossary, owners, or one table's metadata)")
    return out


def _warehouse_columns(con: duckdb.DuckDBPyConnection) -> WarehouseColumns:
    out: WarehouseColumns = {}
    for table, column, dtype in con.execute(_COLUMNS_SQL).fetchall():
        out.setdefault(table.lower(), (table, []))[1].append((column, dtype))
    return out


def _catalog_changes(store: CatalogStore, warehouse: WarehouseColumns, loaded: list[data_files.LoadedTable],
                     read: _Read, report: ImportReport) -> CatalogChanges:
    # Data first, then Lathe YAML, then dbt: metadata applies to the columns the new data have.
    changes = CatalogChanges(store, warehouse, report)
    for t in loaded:
        changes.loaded(t)
    for doc in read.lathe:
        applied = [n for t, line in doc.tables if (n := changes.metadata(t, doc.path, line, needs_table=False))]
        changes.glossary += doc.glossary
        changes.owners += doc.owners
        _applied(report, doc.path, "lathe", tables=applied, glossary=[g.name for g in doc.glossary],
                 owners=[o.name for o in doc.owners])
    for path, models in read.dbt:
        applied = [n for t, line in models if (n := changes.metadata(t, path, line, needs_table=True))]
        _applied(report, path, "dbt", tables=applied)
    changes.warn_ahead_of_data()
    return changes


def _applied(report: ImportReport, path: Path, fmt: Literal["lathe", "dbt"], **names: list[str]) -> None:
    """Record what a metadata file applied; the documents of one file add up to one entry."""
    last = report.metadata[-1] if report.metadata else None
    if last is None or (last.path, last.format) != (str(path), fmt):
        last = MetadataImport(path=str(path), format=fmt)
        report.metadata.append(last)
    for key, values in names.items():
        getattr(last, key).extend(values)

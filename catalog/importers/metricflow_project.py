"""A MetricFlow project (a directory of `semantic_models:` / `metrics:` YAML) as one catalog semantic file.

Checks what would break the semantic layer before anything is written: tables behind `ref('x')` that the
warehouse lacks, and names defined twice (in this project or another one). It never writes files itself.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UserError
from catalog.importers.discovery import YamlFile
from catalog.semantic.model_exprs import parse_expr, sql_expression
from catalog.semantic.spec import SemanticManifest
from catalog.semantic.where_filters import parse_filter
from catalog.store import load_semantic_file, table_filename
from catalog.suggestions import unknown
from core.yaml_files import CatalogFileError

SEMANTIC_KEYS = ("semantic_models", "metrics", "semantic_model", "metric")


class SemanticImportError(UserError):
    """A MetricFlow definition that cannot be imported as it is."""


@dataclass
class Project:
    name: str
    dir: Path
    files: list[Path] = field(default_factory=list)
    manifest: SemanticManifest = field(default_factory=SemanticManifest)

    @property
    def catalog_file(self) -> str:
        """The project's file under `catalog/semantic/`."""
        return table_filename(self.name)


def has_semantic_content(data: Any) -> bool:
    return isinstance(data, dict) and any(k in data for k in SEMANTIC_KEYS)


def source(item: Any) -> str:
    """Where a semantic model or metric was defined, as `file:line`."""
    return (item.__pydantic_extra__ or {}).get("_source", "?")


def read_projects(files: list[YamlFile]) -> list[Project]:
    """Group files by project directory and parse them; a name defined twice in one project is an error."""
    projects: dict[Path, Project] = {}
    by_name: dict[str, Project] = {}
    for yf in files:
        proj = projects.get(yf.project_dir)
        if proj is None:
            name = yf.project_dir.name or "semantic"
            other = by_name.get(name)
            if other is not None:
                raise SemanticImportError(
                    f"two MetricFlow projects named `{name}` in one import: {other.dir} and {yf.project_dir}; "
                    "a project is stored as catalog/semantic/<directory name>.yml, so rename one directory")
            proj = projects[yf.project_dir] = by_name[name] = Project(name, yf.project_dir)
        part = load_semantic_file(yf.path)
        proj.files.append(yf.path)
        _no_duplicates([proj.manifest, part])
        proj.manifest = SemanticManifest(semantic_models=proj.manifest.semantic_models + part.semantic_models,
                                         metrics=proj.manifest.metrics + part.metrics)
    check_definitions(list(projects.values()))
    return list(projects.values())


def _refuse(item: Any, message: str) -> None:
    path, _, line = source(item).rpartition(":")
    raise CatalogFileError(path, int(line) if line.isdigit() else None, message)


def check_definitions(projects: list[Project]) -> None:
    """What would fail only at query time fails at import, with file and line: an `expr:` that is not one
    allowed SQL expression, a metric that names a measure or metric no project of the import defines, a filter
    or formula that does not parse."""
    models = [sm for p in projects for sm in p.manifest.semantic_models]
    measures = {ms.name for sm in models for ms in sm.measures}
    metrics = ({m.name for p in projects for m in p.manifest.metrics}
               | {ms.name for sm in models for ms in sm.measures if getattr(ms, "create_metric", False)})
    for sm in models:
        for kind, items in (("entity", sm.entities), ("dimension", sm.dimensions), ("measure", sm.measures)):
            for it in items:
                try:
                    parse_expr(it.column_expr, f"semantic model `{sm.name}`, {kind} `{it.name}`")
                except UserError as e:
                    _refuse(sm, str(e))
    for p in projects:
        for m in p.manifest.metrics:
            tp = m.type_params
            wanted = [("measure", i.name, measures) for i in (tp.measure,) if i is not None]
            wanted += [("metric", i.name, metrics) for i in (tp.numerator, tp.denominator, *(tp.metrics or []))
                       if i is not None]
            for kind, name, known in wanted:
                if name not in known:
                    _refuse(m, f"metric `{m.name}` reads {unknown(kind, name, sorted(known))}")
            filters = list(m.filter or []) + [f for i in (tp.measure, tp.numerator, tp.denominator,
                                                          *(tp.metrics or [])) if i is not None for f in i.filter or []]
            try:
                for f in filters:
                    parse_filter(f, f"filter of metric `{m.name}`")
                if tp.expr is not None:
                    sql_expression(str(tp.expr))
            except UserError as e:
                _refuse(m, f"metric `{m.name}`: {e}")


def check_tables(project: Project, tables: Iterable[str]) -> None:
    """Every semantic model's `ref('x')` must be a warehouse table (case-insensitive)."""
    names = list(tables)
    low = {t.lower() for t in names}
    for sm in project.manifest.semantic_models:
        if sm.table.lower() not in low:
            path, _, line = source(sm).rpartition(":")
            hint = unknown("table", sm.table, names)
            if "did you mean" in hint:
                hint += " Tables in the warehouse: " + ", ".join(f"`{t}`" for t in sorted(names)[:20])
                hint += " …" if len(names) > 20 else ""
            raise CatalogFileError(path, int(line) if line.isdigit() else None,
                                   f"semantic model `{sm.name}` reads `{sm.model or sm.table}`: {hint}. "
                                   "Import that table's data in the same import (or before), or fix the ref")


def check_clashes(projects: list[Project], semantic_dir: Path) -> dict[str, SemanticManifest]:
    """Names that clash between this import's projects or with another stored project are an error.

    Returns each imported project's earlier stored manifest (empty when new), for reporting what changed.
    """
    replaced = {p.catalog_file for p in projects}
    stored: dict[str, SemanticManifest] = {}
    others: list[SemanticManifest] = []
    for f in sorted(semantic_dir.rglob("*.y*ml")) if semantic_dir.exists() else []:
        m = load_semantic_file(f)
        if f.parent == semantic_dir and f.name in replaced:
            stored[f.name] = m
        else:
            others.append(m)
    _no_duplicates(others + [p.manifest for p in projects], stored_from=len(others))
    return {p.name: stored.get(p.catalog_file, SemanticManifest()) for p in projects}


def _no_duplicates(manifests: list[SemanticManifest], stored_from: int = 0) -> None:
    # `manifests[:stored_from]` are other projects' files already in the catalog.
    for kind, key in (("semantic model", "semantic_models"), ("metric", "metrics")):
        first: dict[str, tuple[Any, int]] = {}
        for i, m in enumerate(manifests):
            for item in getattr(m, key):
                prev, at = first.setdefault(item.name, (item, i))
                if prev is not item:
                    fix = "rename one" + (", or delete the other project's file" if at < stored_from else "")
                    raise SemanticImportError(
                        f"{kind} `{item.name}` is defined twice: at {source(prev)} and at {source(item)}; {fix}")


def changes(old: SemanticManifest, new: SemanticManifest) -> dict[str, list[str]]:
    """Names added, updated (present before and now) and removed, per kind."""
    out: dict[str, list[str]] = {}
    for key in ("semantic_models", "metrics"):
        before = {x.name for x in getattr(old, key)}
        now = [x.name for x in getattr(new, key)]
        out[f"{key}_added"] = [n for n in now if n not in before]
        out[f"{key}_updated"] = [n for n in now if n in before]
        out[f"{key}_removed"] = sorted(before - set(now))
    return out

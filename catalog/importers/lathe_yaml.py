"""Lathe's own metadata YAML: one `Table` document (as in `catalog/tables/*.yml`) or `tables:` /
`glossary:` / `owners:` lists, validated with file and line in every error.

Reads parsed YAML documents only; merging into the catalog and writing are the caller's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.metadata import GlossaryTerm, Owner, Table
from core.yaml_files import CatalogFileError, load_yaml, validate

LIST_KEYS = ("tables", "glossary", "owners")
_TABLE_FIELDS = frozenset(Table.model_fields)


@dataclass
class LatheMetadata:
    path: Path
    tables: list[tuple[Table, int | None]] = field(default_factory=list)  # each with its line
    glossary: list[GlossaryTerm] = field(default_factory=list)
    owners: list[Owner] = field(default_factory=list)


def is_table_document(data: Any) -> bool:
    """A mapping that describes one table: a `name` and either `columns` or only `Table` fields."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return False
    return "columns" in data or set(data) <= _TABLE_FIELDS


def is_lathe_document(data: Any) -> bool:
    return (isinstance(data, dict) and any(k in data for k in LIST_KEYS)) or is_table_document(data)


def read(data: dict, lines: dict[tuple, int], path: Path) -> LatheMetadata:
    out = LatheMetadata(path)
    if is_table_document(data):
        out.tables.append((validate(Table, data, path, lines), lines.get(())))
        return out
    for key, model in (("tables", Table), ("glossary", GlossaryTerm), ("owners", Owner)):
        if key not in data:
            continue
        items = data[key] or []
        if not isinstance(items, list):
            raise CatalogFileError(path, lines.get((key,)), f"`{key}` must be a list of {model.__name__} entries")
        for i, item in enumerate(items):
            got = validate(model, item, path, lines, prefix=(key, i))
            if key == "tables":
                out.tables.append((got, lines.get((key, i))))
            else:
                getattr(out, key).append(got)
    return out


def read_named_list(path: Path, key: str, model: type) -> list:
    """The workspace's `glossary.yml` / `owners.yml` entries (empty when the file does not exist)."""
    if not path.exists():
        return []
    data, lines = load_yaml(path)
    items = (data or {}).get(key, []) if isinstance(data, dict) or not data else None
    if not isinstance(items, list):
        raise CatalogFileError(path, 1, f"expected a mapping with a `{key}:` list")
    return [validate(model, it, path, lines, prefix=(key, i)) for i, it in enumerate(items)]

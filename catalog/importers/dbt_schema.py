"""dbt `schema.yml` `models:` entries as partial catalog tables: descriptions, owner, PII, tags, synonyms.

Reads `meta:` and `tags:` where dbt puts them (on the entry or under `config:`); it sets only the fields
a file gives, so the rest of a table's metadata is kept. It never decides whether a table exists.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from catalog.metadata import Column, PiiTag, Table
from core.yaml_files import CatalogFileError

_PII_VALUES = ", ".join(t.value for t in PiiTag)


def read_models(data: dict, lines: dict[tuple, int], path: Path) -> list[tuple[Table, int | None]]:
    """Each entry of `models:` as a `Table` holding only what the entry says, with its line."""
    items = data.get("models") or []
    if not isinstance(items, list):
        raise CatalogFileError(path, lines.get(("models",)), "`models` must be a list of dbt models")
    out = []
    for i, item in enumerate(items):
        loc = ("models", i)
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise CatalogFileError(path, lines.get(loc), "each entry of `models` needs a `name`")
        fields = _fields(item, path, lines, loc)
        cols = item.get("columns") or []
        if not isinstance(cols, list):
            raise CatalogFileError(path, lines.get(loc + ("columns",)), "`columns` must be a list")
        columns = []
        for j, col in enumerate(cols):
            cloc = loc + ("columns", j)
            if not isinstance(col, dict) or not isinstance(col.get("name"), str):
                raise CatalogFileError(path, lines.get(cloc), "each column needs a `name`")
            columns.append(Column(name=col["name"], **_fields(col, path, lines, cloc, column=True)))
        if columns:
            fields["columns"] = columns
        out.append((Table(name=item["name"], **fields), lines.get(loc)))
    return out


def _fields(item: dict, path: Path, lines: dict[tuple, int], loc: tuple, *, column: bool = False) -> dict[str, Any]:
    config = _mapping(item.get("config"))
    meta = {**_mapping(config.get("meta")), **_mapping(item.get("meta"))}
    meta_loc = loc + ("meta",) if "meta" in item else loc + ("config", "meta")
    out: dict[str, Any] = {}
    if isinstance(item.get("description"), str) and item["description"].strip():
        out["description"] = item["description"].strip()
    tags = _strings(config.get("tags")) + _strings(item.get("tags")) + _strings(meta.get("tags"))
    if tags:
        out["tags"] = list(dict.fromkeys(tags))
    synonyms = _strings(meta.get("synonyms"))
    if synonyms:
        out["synonyms"] = synonyms
    if column:
        for key in ("pii", "contains_pii"):
            if key in meta:
                out["pii"] = _pii(meta[key], path, lines.get(meta_loc + (key,)) or lines.get(loc))
                break
    else:
        owner = _owner(meta.get("owner"))
        if owner:
            out["owner"] = owner
    return out


def _mapping(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v] if isinstance(v, list) else []


def _owner(v: Any) -> str | None:
    if isinstance(v, str):
        return v.strip() or None
    if isinstance(v, dict):
        return v.get("name") or v.get("email")
    return None


def _pii(v: Any, path: Path, line: int | None) -> PiiTag | None:
    if v is True:
        return PiiTag.other
    if v is False or v is None:
        return None
    try:
        return PiiTag(str(v).lower())
    except ValueError:
        raise CatalogFileError(path, line, f"meta.pii `{v}` is not a PII tag; use true, false or one of: {_PII_VALUES}") from None

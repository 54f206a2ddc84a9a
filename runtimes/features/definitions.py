"""Feature view definitions: the pydantic model of `catalog/features/*.yml` and reading those files.

A view names an entity (its join key), a source (a catalog table or one read query), the event-time column,
typed and described features, a TTL and an owner. Reading reports the file and line of any mistake; it never
touches the warehouse (checking the names against it is `view_sql`'s work).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog.data_source import SourceFields
from core.errors import UserError
from core.workspace import Workspace
from core.yaml_files import CatalogFileError, line_of, load_yaml, validate

FEATURES_DIR = "features"
_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
_TTL = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_TTL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Declared feature type → the DuckDB type its values are cast to, so offline and online values agree.
FEATURE_TYPES: dict[str, str] = {
    "int32": "INTEGER", "int64": "BIGINT", "float32": "FLOAT", "float64": "DOUBLE",
    "string": "VARCHAR", "bool": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE",
}


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Entity(_Def):
    name: str = Field(pattern=_NAME, description="what the rows describe, e.g. customer")
    join_key: str | list[str] = Field(description="the source column that identifies one entity, e.g. customer_id, "
                                                  "or the columns that do together, e.g. [driver_id, customer_id]")

    @field_validator("join_key")
    @classmethod
    def _columns(cls, v: str | list[str]) -> str | list[str]:
        cols = [v] if isinstance(v, str) else v
        if not cols or any(not c.strip() for c in cols):
            raise ValueError("name the key column, or a list of key columns")
        if len({c.lower() for c in cols}) != len(cols):
            raise ValueError("a key column is listed twice; keep one")
        return cols[0] if len(cols) == 1 else v

    @property
    def keys(self) -> list[str]:
        """The key columns, in order (one for most entities)."""
        return [self.join_key] if isinstance(self.join_key, str) else list(self.join_key)


class Feature(_Def):
    name: str = Field(pattern=_NAME)
    type: Literal["int32", "int64", "float32", "float64", "string", "bool", "timestamp", "date"]
    description: str = Field(min_length=1, description="what the value means, for whoever reuses it")
    expr: str | None = Field(None, description="a SQL expression over one source row; default: the column `name`")

    @property
    def sql_expr(self) -> str:
        return self.expr or self.name


class Source(SourceFields, _Def):
    """A catalog table (`table:`) or one read query (`sql:`)."""


class FeatureView(_Def):
    name: str = Field(pattern=_NAME)
    description: str = ""
    owner: str = Field(min_length=1, description="who answers for these features")
    entity: Entity
    source: Source
    event_time: str = Field(min_length=1, description="the source column saying when each row's values became true")
    ttl: str | None = Field(None, description="how long a value stays valid, e.g. 30d, 12h; none: forever")
    features: list[Feature] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: str | None) -> str | None:
        if v is not None and not _TTL.match(v):
            raise ValueError(f"`{v}` is not a duration: write a number and a unit (s, m, h, d, w), e.g. 30d")
        return v

    @field_validator("features")
    @classmethod
    def _distinct(cls, v: list[Feature]) -> list[Feature]:
        names = [f.name.lower() for f in v]
        for i, n in enumerate(names):
            if n in names[:i]:
                raise ValueError(f"feature `{v[i].name}` is listed twice; keep one")
        return v

    @model_validator(mode="after")
    def _not_the_key(self) -> "FeatureView":
        reserved = {k.lower() for k in self.entity.keys} | {"event_timestamp"}
        for f in self.features:
            if f.name.lower() in reserved:
                raise ValueError(f"feature `{f.name}` has the name of the entity key or of `event_timestamp`; "
                                 "rename it")
        return self

    @property
    def ttl_delta(self) -> dt.timedelta | None:
        if self.ttl is None:
            return None
        n, unit = _TTL.match(self.ttl).groups()  # type: ignore[union-attr]
        return dt.timedelta(**{_TTL_UNITS[unit]: int(n)})

    def feature(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name.lower() == name.lower()), None)

    def fingerprint(self) -> str:
        """A hash of what shapes the values (not descriptions or owner): a change of it is a new version."""
        shape = {"entity": self.entity.join_key, "source": self.source.source.fields(), "event_time": self.event_time,
                 "ttl": self.ttl, "features": [[f.name, f.type, f.sql_expr] for f in self.features]}
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


class _File(_Def):
    feature_views: list[FeatureView] = Field(min_length=1)


def features_dir(ws: Workspace) -> Path:
    return ws.catalog_dir / FEATURES_DIR


def load_file(path: Path) -> list[tuple[FeatureView, str]]:
    """The views of one YAML file, each with its `file:line`; a mistake is a `CatalogFileError` at its line."""
    data, lines = load_yaml(path)
    if not isinstance(data, dict) or "feature_views" not in data:
        raise CatalogFileError(path, 1, "expected a mapping with a `feature_views:` list of views "
                               "(name, owner, entity, source, event_time, features)")
    parsed = validate(_File, data, path, lines)
    return [(v, f"{path}:{line_of(lines, ('feature_views', i)) or 1}") for i, v in enumerate(parsed.feature_views)]


def load_definitions(ws: Workspace, files: list[Path] | None = None) -> dict[str, tuple[FeatureView, str]]:
    """Every view of `catalog/features/*.yml` (or of `files`) by name; a name defined twice is an error."""
    if files is None:
        d = features_dir(ws)
        files = sorted(d.glob("*.y*ml")) if d.exists() else []
    out: dict[str, tuple[FeatureView, str]] = {}
    for f in files:
        for view, where in load_file(f):
            first = next((w for n, (_, w) in out.items() if n.lower() == view.name.lower()), None)
            if first is not None:
                raise CatalogFileError(f, int(where.rsplit(":", 1)[1]), f"feature view `{view.name}` is defined "
                                       f"twice: first at {first}; rename one")
            out[view.name] = (view, where)
    return out


def parse_refs(refs: list[str]) -> list[tuple[str, int | None, str | None]]:
    """`view`, `view:feature`, `view@2` or `view@2:feature` → (view, version or None, feature or None)."""
    out = []
    for ref in refs:
        m = re.fullmatch(r"\s*([A-Za-z][A-Za-z0-9_]*)(?:@(\d+))?(?::([A-Za-z][A-Za-z0-9_]*))?\s*", ref)
        if m is None:
            raise UserError(f"`{ref}` is not a feature reference: write view, view:feature, view@VERSION or "
                            "view@VERSION:feature")
        out.append((m.group(1), int(m.group(2)) if m.group(2) else None, m.group(3)))
    return out

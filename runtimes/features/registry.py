"""Applied feature view versions, kept in the workspace's state database: a changed definition becomes a new
version and old versions stay readable, each with its lineage and who applied it.

`apply` checks every definition against the warehouse before recording any; it never writes half of a batch.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from catalog.query_schema import warehouse_catalog
from catalog.store import CatalogStore
from catalog.suggestions import unknown
from catalog.warehouse import connect_reader
from core.errors import UserError
from core.principal import Principal
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace
from runtimes.features.definitions import FeatureView, load_definitions
from runtimes.features.view_sql import build_view_query

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_view_versions (
    name TEXT NOT NULL, version INTEGER NOT NULL, fingerprint TEXT NOT NULL, definition TEXT NOT NULL,
    lineage TEXT NOT NULL, defined_at TEXT NOT NULL, applied_at REAL NOT NULL, applied_by TEXT NOT NULL,
    PRIMARY KEY (name, version));
"""


@dataclass
class ViewVersion:
    name: str
    version: int
    view: FeatureView
    lineage: dict[str, list[str]]  # output column → `table.column` sources
    defined_at: str  # the file and line it was applied from
    applied_at: float
    applied_by: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass
class Applied:
    version: ViewVersion
    change: str  # "new", "new version", "described" (descriptions or owner only) or "unchanged"


def _db(ws: Workspace) -> Path:
    ensure_schema(ws.state_path, _SCHEMA)
    return ws.state_path


def _row(r) -> ViewVersion:
    return ViewVersion(name=r["name"], version=r["version"], view=FeatureView.model_validate_json(r["definition"]),
                       lineage=json.loads(r["lineage"]), defined_at=r["defined_at"], applied_at=r["applied_at"],
                       applied_by=r["applied_by"])


def apply(ws: Workspace, files: list[Path] | None = None, *, principal: Principal | None = None) -> list[Applied]:
    """Check every view of `catalog/features/` (or of `files`) against the warehouse, then record each changed one
    as a new version, all in one transaction."""
    principal = principal or Principal.local_admin()
    defs = load_definitions(ws, files)
    if not defs:
        raise UserError(f"no feature views found: write them under {ws.catalog_dir / 'features'}/*.yml "
                        "(a `feature_views:` list)")
    catalog = CatalogStore(ws).load()
    checked = []
    with connect_reader(ws) as con:
        tables = warehouse_catalog(con, catalog)
        for view, where in defs.values():
            try:
                checked.append((view, where, build_view_query(con, tables, view).lineage))
            except UserError as e:
                raise UserError(f"{where}: {e}") from None
    out = []
    now = time.time()
    root = f"{ws.root}/"
    # Kept relative to the workspace, which holds no absolute paths (it may be copied or moved).
    checked = [(v, w.removeprefix(root), lineage) for v, w, lineage in checked]
    with transaction(_db(ws), immediate=True) as db:
        for view, where, lineage in checked:
            last = db.execute("SELECT * FROM feature_view_versions WHERE name = ? ORDER BY version DESC LIMIT 1",
                              (view.name,)).fetchone()
            prev = _row(last) if last else None
            definition = view.model_dump_json()
            if prev and prev.view.fingerprint() == view.fingerprint():
                change = "unchanged" if prev.view == view else "described"
                if change == "described":  # descriptions and owner are metadata: the version keeps its values
                    db.execute("UPDATE feature_view_versions SET definition = ?, defined_at = ? WHERE name = ? AND "
                               "version = ?", (definition, where, view.name, prev.version))
                version = prev.version
            else:
                version = prev.version + 1 if prev else 1
                change = "new version" if prev else "new"
                db.execute("INSERT INTO feature_view_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (view.name, version, view.fingerprint(), definition, json.dumps(lineage), where, now,
                            principal.name))
            out.append(Applied(ViewVersion(view.name, version, view, lineage, where, now, principal.name), change))
    return out


def versions(ws: Workspace, name: str | None = None) -> list[ViewVersion]:
    """Every applied version (of `name`), oldest first."""
    with transaction(_db(ws)) as db:
        rows = db.execute("SELECT * FROM feature_view_versions WHERE (? IS NULL OR name = ?) ORDER BY name, version",
                          (name, name)).fetchall()
    return [_row(r) for r in rows]


def latest(ws: Workspace) -> dict[str, ViewVersion]:
    """The newest version of each applied view, by name."""
    return {v.name: v for v in versions(ws)}


def get_version(ws: Workspace, name: str, version: int | None = None) -> ViewVersion:
    """One applied version (the newest when `version` is None), or a `UserError` naming what exists."""
    all_ = [v for v in versions(ws) if v.name.lower() == name.lower()]
    if not all_:
        raise UserError(unknown("feature view", name, list(latest(ws))) + " (run `lathe features apply` after "
                        "writing its YAML)")
    if version is None:
        return all_[-1]
    hit = next((v for v in all_ if v.version == version), None)
    if hit is None:
        raise UserError(f"feature view `{all_[0].name}` has no version {version}; it has "
                        f"{', '.join(str(v.version) for v in all_)}")
    return hit

"""The workspace: one directory that holds everything a user owns (settings, warehouse, catalog, state).

Resolves where it lives (`--workspace`, `LATHE_HOME`, `./workspace`) and names its paths; it never
creates data of its own except the empty skeleton made by `create`.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from core.errors import UserError
from core.settings import DEFAULT_TOML, Settings, load_settings


class WorkspaceError(UserError):
    """A workspace that is missing or unusable, with what to do about it."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> "Workspace":
        raw = path or os.environ.get("LATHE_HOME") or "workspace"
        return cls(Path(raw).expanduser().resolve())

    # paths, as the design lays them out
    @property
    def settings_path(self) -> Path:
        return self.root / "lathe.toml"

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    @property
    def state_path(self) -> Path:
        return self.root / "state.sqlite"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def cache_dir(self) -> Path:
        """Derived, disposable files (search index, DuckDB spill and extension folders)."""
        return self.root / ".cache"

    @property
    def exists(self) -> bool:
        return self.settings_path.exists() and self.warehouse_path.exists()

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.settings_path)

    def require(self) -> "Workspace":
        if not self.exists:
            raise WorkspaceError(
                f"no Lathe workspace at {self.root}: run `lathe init` (or `lathe init --demo`) first, "
                "or point --workspace / LATHE_HOME at an existing one")
        return self

    def create(self) -> None:
        """The empty skeleton: settings, warehouse file, catalog folders and the state database."""
        for d in (self.root, self.catalog_dir / "tables", self.catalog_dir / "semantic",
                  self.root / "models", self.root / "runs", self.cache_dir):
            d.mkdir(parents=True, exist_ok=True)
        if not self.settings_path.exists():
            self.settings_path.write_text(DEFAULT_TOML.format(name=self.root.name), encoding="utf-8")
        import duckdb  # an empty warehouse file, so every reader finds one; the catalog fills it

        duckdb.connect(str(self.warehouse_path)).close()
        with sqlite3.connect(self.state_path) as db:
            # Later features add their own tables; this one records which schema the file carries.
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER)")
            db.execute("INSERT OR IGNORE INTO schema_version VALUES ('workspace', 1)")

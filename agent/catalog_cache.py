"""One session's view of the catalog and its search index, reloaded only when the catalog files change.

Keeps per-turn work to a fingerprint (a few `stat` calls); it never writes the catalog.
"""
from __future__ import annotations

from typing import Any

from catalog.metadata import Catalog
from core.workspace import Workspace


class CatalogCache:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._fingerprint: str | None = None
        self._catalog: Catalog | None = None
        self._search: Any = None

    def _fresh(self) -> str:
        from catalog.search import catalog_fingerprint

        fp = catalog_fingerprint(self.workspace)
        if fp != self._fingerprint:
            if self._search is not None:
                self._search.index.close()
            self._fingerprint, self._catalog, self._search = fp, None, None
        return fp

    @property
    def catalog(self) -> Catalog:
        self._fresh()
        if self._catalog is None:
            from catalog.store import CatalogStore

            self._catalog = CatalogStore(self.workspace).load()
        return self._catalog

    @property
    def search(self) -> Any:
        """The workspace's `CatalogSearch`, built or loaded once per catalog version."""
        self._fresh()
        if self._search is None:
            from catalog.search import CatalogSearch

            self._search = CatalogSearch.for_workspace(self.workspace)
        return self._search

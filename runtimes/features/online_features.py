"""Online feature reads by entity key: the latest materialized value of each asked feature, or None where
there is none or it is older than the view's TTL.

An `OnlineReader` resolves the references and checks the principal's PII grants once, so each read is one
indexed lookup per view. It never reads the warehouse.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from catalog.pii_masking import hidden_pii
from catalog.store import CatalogStore
from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.features.materialize import online_table
from runtimes.features.online_store import OnlineStore, online_key, open_online_store
from runtimes.features.selection import select_features


class OnlineReader:
    def __init__(self, ws: Workspace, features: list[str], *, principal: Principal | None = None,
                 full_names: bool = False, store: OnlineStore | None = None):
        principal = principal or Principal.local_admin()
        self.selections = select_features(ws, features)
        catalog = CatalogStore(ws).load()
        for sel in self.selections:  # the same grants as the offline path: from the version's recorded lineage
            vv = sel.version
            wanted = [*vv.view.entity.keys, *(f.name for f in sel.features)]
            sources = {s for c in wanted for s in vv.lineage.get(c, [])}
            hidden = hidden_pii(catalog, principal, sources)
            if hidden:
                cols = ", ".join(f"{c} (pii: {t})" for c, t in sorted(hidden.items()))
                raise UserError(f"feature view `{vv.ref}` serves PII you have no grant for: {cols}; ask an admin "
                                f"for {' or '.join(sorted({f'`pii:{t}`' for t in hidden.values()}))} (or `pii`)")
        self.store = store or open_online_store(ws)
        for sel in self.selections:
            if not self.store.has(online_table(sel.version)):
                raise UserError(f"feature view `{sel.version.ref}` is not materialized yet: run `lathe features "
                                f"materialize {sel.version.name}` first")
        self._plan = [(online_table(s.version), [f.name for f in s.features],
                       [f"{s.version.name}__{f.name}" if full_names else f.name for f in s.features],
                       s.version.view.ttl_delta.total_seconds() if s.version.view.ttl_delta else None,
                       tuple(s.version.view.entity.keys), s.version.ref)
                      for s in self.selections]

    def get(self, keys: Sequence[Any], *, now: float | None = None) -> list[dict[str, Any]]:
        """One dict per key, in order: every asked feature, None where no valid value is stored. A key is the
        entity's key value, a tuple of values (in the view's key column order) or a mapping by key column, which
        serves views keyed by different columns at once."""
        now = time.time() if now is None else now
        out: list[dict[str, Any]] = [{} for _ in keys]
        stored: dict[tuple[str, ...], list[str]] = {}
        asks = []
        for table, columns, _, _, key_cols, ref in self._plan:
            skeys = stored.get(key_cols)
            if skeys is None:
                skeys = stored[key_cols] = [_stored_key(k, key_cols, ref) for k in keys]
            asks.append((table, columns, skeys))
        for (table, columns, names, ttl, _, _), (_, _, skeys), found in zip(self._plan, asks,
                                                                         self.store.read_views(asks)):
            for row, k in zip(out, skeys):
                hit = found.get(k)
                valid = hit is not None and (ttl is None or hit[0] >= now - ttl)
                values = hit[1] if valid else [None] * len(names)  # type: ignore[index]
                row.update(zip(names, values))
        return out


def _stored_key(key: Any, columns: tuple[str, ...], ref: str) -> str:
    if isinstance(key, Mapping):
        missing = [c for c in columns if c not in key]
        if missing:
            raise UserError(f"feature view `{ref}` is keyed by {', '.join(columns)}: the key {dict(key)!r} lacks "
                            f"{', '.join(missing)}")
        return online_key([key[c] for c in columns])
    if isinstance(key, (tuple, list)):
        if len(key) != len(columns):
            raise UserError(f"feature view `{ref}` is keyed by {len(columns)} column(s) ({', '.join(columns)}); the key "
                            f"{tuple(key)!r} has {len(key)} value(s)")
        return online_key(key)
    if len(columns) != 1:
        raise UserError(f"feature view `{ref}` is keyed by {', '.join(columns)}: give each key as a tuple of their "
                        f"values or a mapping such as {{{', '.join(f'{c!r}: …' for c in columns)}}}, not {key!r}")
    return str(key)


def get_online_features(ws: Workspace, features: list[str], keys: Sequence[Any], *,
                        principal: Principal | None = None, now: float | None = None) -> list[dict[str, Any]]:
    return OnlineReader(ws, features, principal=principal).get(keys, now=now)

"""Which features a request names: references (`view`, `view:feature`, `view@2:feature`) resolved against the
applied versions, grouped per view version in the order asked. Reads the registry only."""
from __future__ import annotations

from dataclasses import dataclass

from catalog.sql_guard import unknown_in
from core.errors import UserError
from core.workspace import Workspace
from runtimes.features.definitions import Feature, parse_refs
from runtimes.features.registry import ViewVersion, get_version


@dataclass
class Selection:
    version: ViewVersion
    features: list[Feature]


def select_features(ws: Workspace, refs: list[str]) -> list[Selection]:
    if not refs:
        raise UserError("name at least one feature: view (all its features), view:feature or view@VERSION:feature")
    out: dict[tuple[str, int], Selection] = {}
    for name, version, feature in parse_refs(refs):
        vv = get_version(ws, name, version)
        sel = out.setdefault((vv.name, vv.version), Selection(vv, []))
        if any(s.version.name == vv.name and s.version.version != vv.version for s in out.values()):
            raise UserError(f"feature view `{vv.name}` is asked for in two versions; pick one")
        if feature is None:
            wanted = list(vv.view.features)
        else:
            f = vv.view.feature(feature)
            if f is None:
                raise UserError(unknown_in("feature", feature, [x.name for x in vv.view.features],
                                                f"feature view `{vv.ref}`"))
            wanted = [f]
        sel.features += [f for f in wanted if f not in sel.features]
    return list(out.values())

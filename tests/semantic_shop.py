"""The small hand-made shop of tests/fixtures/semantic_shop as a workspace: its rows in the warehouse and its
MetricFlow YAML in the catalog. Shared by the semantic layer's compiler, guard and CLI tests; holds no tests.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from catalog.warehouse import connect_writer
from core.workspace import Workspace

SHOP = Path(__file__).parent / "fixtures" / "semantic_shop"


def build_shop(root: Path) -> Workspace:
    ws = Workspace(root / "ws")
    ws.create()
    with connect_writer(ws) as con:
        con.execute((SHOP / "data.sql").read_text())
    shutil.copy(SHOP / "shop.yml", ws.catalog_dir / "semantic" / "shop.yml")
    return ws

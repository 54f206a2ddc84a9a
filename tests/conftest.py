"""Shared test fixtures: empty and demo workspaces on real DuckDB files, offline settings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.offline import apply_offline_env

apply_offline_env()

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
EXTERNAL = FIXTURES / "external"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def workspace(tmp_path):
    """A new, empty workspace (settings, warehouse file, catalog folders, state database)."""
    from core.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.create()
    return ws


def external(name: str) -> Path:
    """A real project shipped by a package, unpacked by `make fixtures`."""
    p = EXTERNAL / name
    if not p.exists():
        pytest.fail(f"{p} is missing: run `make fixtures` (it unpacks the MetricFlow sample projects)")
    return p

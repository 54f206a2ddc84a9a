"""Shared test fixtures: empty and demo workspaces on real DuckDB files, offline settings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

for k, v in {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
             "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "RAY_AUTH_MODE": "disabled"}.items():
    os.environ.setdefault(k, v)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
EXTERNAL = FIXTURES / "external"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def workspace(tmp_path):
    """A new, empty workspace (settings, warehouse file, catalog folders, state database)."""
    from catalog.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.create()
    return ws


def external(name: str) -> Path:
    """A real project shipped by a package, unpacked by `make fixtures`."""
    p = EXTERNAL / name
    if not p.exists():
        pytest.fail(f"{p} is missing: run `make fixtures` (it unpacks the MetricFlow sample projects)")
    return p

"""The semantic-vs-hand-written benchmark script on a small demo workspace: every one of its metric queries
gives the same rows as its hand-written SQL (its timings are for `bench/`, not asserted here)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from catalog.demo import company as demo_company
from catalog.warehouse import connect_writer
from core.workspace import Workspace
from tests.waiting import run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "HF_HUB_OFFLINE": "1"}


def test_bench_queries_match_their_hand_written_sql(tmp_path):
    ws = Workspace(tmp_path / "demo")
    ws.create()
    with connect_writer(ws) as con:
        demo_company.generate(con, scale=0.05)
    shutil.copy(ROOT / "catalog" / "demo" / "semantic.yml", ws.catalog_dir / "semantic" / "demo.yml")
    done = run([sys.executable, str(ROOT / "bench" / "semantic_vs_handwritten.py"), "--workspace", str(ws.root),
                "--repeat", "1"], capture_output=True, text=True, env={**os.environ, **OFFLINE}, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "ROWS DIFFER" not in done.stdout
    assert any(line.startswith("median ratio semantic/hand-written over 13 queries") for line in lines)

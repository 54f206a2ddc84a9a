"""`lathe train` shows the plan with its reasons and starts nothing on a dry run, a refused approval or a bad request
(an approved plan trained through the command line is in test_tabular_e2e.py)."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from runtimes.jobs.store import JobStore
from tests.tabular_workspace import build_churn_workspace

ARGS = ["train", "--label", "churn_labels", "--target", "churned", "--entity", "customer_id", "--time", "label_at",
        "--features", "activity", "--column", "segment", "--trials", "2"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from core.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("tabular-cli") / "ws")
    ws.create()
    build_churn_workspace(ws, customers=60, months=4)
    return ws


def lathe(ws, *args, input=None):
    return CliRunner().invoke(app, ["--workspace", str(ws.root), *args], input=input)


def test_a_dry_run_shows_the_plan_and_its_reasons_and_starts_nothing(ws):
    r = lathe(ws, *ARGS, "--dry-run")
    assert r.exit_code == 0, r.output
    for says in ("classification of `churned`", "split: time", "baseline to beat: majority class", "budget: 2 trials",
                 "search space: learning_rate", "feature views: activity@1", "dry run: nothing was started"):
        assert says in r.output
    assert JobStore(ws).list() == []


def test_declining_the_plan_starts_nothing(ws):
    r = lathe(ws, *ARGS, input="n\n")
    assert r.exit_code == 1 and "not approved" in r.output
    assert JobStore(ws).list() == []


def test_a_bad_request_is_one_line_and_starts_nothing(ws):
    r = lathe(ws, *ARGS[:-1], "0", "--yes")
    assert r.exit_code != 0 and "at least 1 trial, not 0" in r.output
    assert JobStore(ws).list() == []

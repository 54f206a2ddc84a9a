"""`lathe query` end to end on the hand-made shop: `--json`, `--explain`, the table, and errors as one line."""
from __future__ import annotations

import json

import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from core.workspace import Workspace
from cli.main import app
from tests.semantic_shop import build_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Workspace:
    return build_shop(tmp_path_factory.mktemp("shop_cli"))


def lathe(ws: Workspace, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(ws.root), "query", *args])


def test_json_has_sql_columns_and_rows(shop):
    r = lathe(shop, "--metrics", "revenue,orders", "--group-by", "customer__region", "--order-by", "-revenue",
              "--limit", "2", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["columns"] == ["customer__region", "revenue", "orders"]
    assert out["rows"] == [["NA", 355.0, 4], ["EMEA", 105.5, 2]]
    assert out["sql"].rstrip().endswith("LIMIT 2")


def test_where_is_repeatable_and_takes_templates(shop):
    r = lathe(shop, "-m", "revenue", "-g", "metric_time__month",
              "--where", "{{ Dimension('customer__region') }} = 'NA'", "--where", "order__channel = 'web'", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"] == [["2024-02-01T00:00:00", 200.0], ["2024-03-01T00:00:00", 20.0]]


def test_explain_prints_only_the_sql(shop):
    r = lathe(shop, "--metrics", "revenue_growth_mom", "--group-by", "metric_time__month", "--explain")
    assert r.exit_code == 0, r.output
    tree = sqlglot.parse_one(r.stdout, read="duckdb")
    assert tree.find(exp.CTE) is not None  # an offset metric needs its time spine
    assert "revenue_growth_mom" in r.stdout and "metric_time__month" in r.stdout


def test_group_by_in_metricflow_spelling(shop):
    r = lathe(shop, "-m", "orders", "-g", "TimeDimension('metric_time', 'month'),order__channel", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["columns"] == ["metric_time__month", "order__channel", "orders"]
    assert out["rows"][0] == ["2024-01-01T00:00:00", "mobile", 1]


def test_table_output(shop):
    r = lathe(shop, "--metrics", "orders", "--group-by", "order__channel")
    assert r.exit_code == 0, r.output
    assert "order__channel" in r.stdout and "mobile" in r.stdout and "web" in r.stdout


def test_user_errors_are_one_line_with_exit_code_2(shop):
    r = lathe(shop, "--metrics", "revnue")
    assert r.exit_code == 2
    assert r.stderr.strip().startswith("error: no metric `revnue`; did you mean `revenue`")
    assert len(r.stderr.strip().splitlines()) == 1
    r = lathe(shop, "--metrics", "revenue", "--group-by", "customer__regoin")
    assert r.exit_code == 2 and "did you mean `customer__region`" in r.stderr
    r = lathe(shop, "--metrics", "revenue", "--limit", "-1")
    assert r.exit_code == 2

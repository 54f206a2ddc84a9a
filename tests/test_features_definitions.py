"""Feature view YAML: mistakes are reported at their file and line; a changed definition is a new version with
the old one kept; every feature's lineage names its source columns; the CLI applies, lists and describes."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from core.errors import UserError
from core.yaml_files import CatalogFileError
from runtimes.features.offline_store import training_set
from runtimes.features.registry import apply, get_version, versions
from tests.features_workspace import SIGNALS_VIEW, at, make_signals, signals_view, write_view

VIEW_HEAD = """
feature_views:
  - name: v
    owner: risk
    entity: {name: customer, join_key: customer_id}
    source: {table: signals}
    event_time: seen_at
"""


@pytest.fixture
def ws(workspace):
    make_signals(workspace, [(1, at(1), 10.0), (2, at(2), 70.0)])
    return workspace


def _error(ws, text: str) -> CatalogFileError:
    path = write_view(ws, text)
    with pytest.raises(CatalogFileError) as e:
        apply(ws)
    assert e.value.path == str(path)
    return e.value


@pytest.mark.parametrize("tail, line, says", [
    ("    ttl: 3 fortnights\n    features: [{name: s, type: float64, description: d, expr: score}]\n", 7,
     "ttl: Value error, `3 fortnights` is not a duration"),
    ("    features:\n      - {name: s, type: decimal, description: d}\n", 8, "features.0.type: Input should be"),
    ("    features:\n      - {name: s, type: float64, description: d, expr: score}\n"
     "      - {name: s, type: string, description: e, expr: band}\n", 7, "feature `s` is listed twice"),
    ("    features:\n      - {name: s, type: float64}\n", 8, "features.0.description: Field required"),
    ("    colour: blue\n    features: [{name: s, type: float64, description: d}]\n", 7,
     "colour: Extra inputs are not permitted"),
])
def test_a_bad_definition_is_reported_at_its_line(ws, tail, line, says):
    err = _error(ws, VIEW_HEAD + tail)
    assert err.line == line and says in err.message


def test_malformed_yaml_and_a_missing_owner_name_their_lines(ws):
    err = _error(ws, "feature_views:\n  - name: v\n    entity: {name: c, join_key: customer_id\n")
    assert err.line is not None and "malformed YAML" in err.message
    err = _error(ws, VIEW_HEAD.replace("    owner: risk\n", "") + "    features: [{name: score, type: float64, description: d}]\n")
    assert err.line == 2 and "owner: Field required" in err.message  # the view that lacks it


def test_a_source_that_names_both_table_and_sql_is_refused(ws):
    err = _error(ws, VIEW_HEAD.replace("source: {table: signals}", "source: {table: signals, sql: SELECT 1}")
                 + "    features: [{name: score, type: float64, description: d}]\n")
    assert err.line == 5 and "exactly one of `table` and `sql`" in err.message


def test_unknown_columns_and_a_non_time_event_column_are_refused_with_the_file_and_line(ws):
    write_view(ws, VIEW_HEAD + "    features: [{name: scor, type: float64, description: d}]\n")
    with pytest.raises(UserError, match=r"views.yml:2: feature view `v`: no column `scor` in table `signals`; did you mean `score`"):
        apply(ws)
    write_view(ws, VIEW_HEAD.replace("event_time: seen_at", "event_time: band")
               + "    features: [{name: score, type: float64, description: d}]\n")
    with pytest.raises(UserError, match="event_time `band` is VARCHAR; it must be a TIMESTAMP or DATE"):
        apply(ws)
    assert versions(ws) == []  # nothing was recorded by a failed apply


def test_a_view_defined_in_two_files_is_refused(ws):
    signals_view(ws)
    write_view(ws, SIGNALS_VIEW.format(ttl=""), name="again.yml")
    with pytest.raises(CatalogFileError, match="feature view `signals` is defined twice"):
        apply(ws)


def test_a_changed_definition_is_a_new_version_and_the_old_one_still_builds(ws):
    signals_view(ws)
    assert [a.change for a in apply(ws)] == ["new"]
    assert [a.change for a in apply(ws)] == ["unchanged"]
    write_view(ws, SIGNALS_VIEW.format(ttl="").replace("the latest risk score", "the newest risk score"))
    assert [(a.change, a.version.version) for a in apply(ws)] == [("described", 1)]
    assert get_version(ws, "signals").view.features[0].description == "the newest risk score"
    write_view(ws, SIGNALS_VIEW.format(ttl="").replace("{name: score, type: float64,",
                                                        "{name: score, type: float64, expr: score * 10,"))
    assert [(a.change, a.version.version) for a in apply(ws)] == [("new version", 2)]
    assert [v.version for v in versions(ws, "signals")] == [1, 2]
    frame = pd.DataFrame({"customer_id": [1], "event_timestamp": [at(5)]})
    assert list(training_set(ws, frame, ["signals@1:score"])["score"]) == [10.0]
    assert list(training_set(ws, frame, ["signals:score"])["score"]) == [100.0]
    with pytest.raises(UserError, match="has no version 3; it has 1, 2"):
        training_set(ws, frame, ["signals@3"])


def test_lineage_names_each_features_source_columns_through_sql(ws):
    write_view(ws, VIEW_HEAD.replace("source: {table: signals}",
                                     "source: {sql: 'SELECT customer_id, seen_at, score + length(band) AS mixed FROM signals'}")
               + "    features: [{name: mixed, type: float64, description: d}, "
                 "{name: hour, type: int64, description: h, expr: hour(seen_at)}]\n")
    (applied,) = apply(ws)
    assert applied.version.lineage["mixed"] == ["signals.band", "signals.score"]
    assert applied.version.lineage["hour"] == ["signals.seen_at"]
    assert applied.version.lineage["customer_id"] == ["signals.customer_id"]


def test_cli_apply_list_describe(ws, tmp_path):
    outside = tmp_path / "mine.yml"
    outside.write_text(SIGNALS_VIEW.format(ttl="ttl: 30d"), encoding="utf-8")
    run = CliRunner()
    got = run.invoke(app, ["--workspace", str(ws.root), "features", "apply", str(outside), "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout) == [{"view": "signals", "version": 1, "change": "new"}]
    assert (ws.catalog_dir / "features" / "mine.yml").exists()
    got = run.invoke(app, ["--workspace", str(ws.root), "features", "list", "--json"])
    assert [(r["view"], r["version"], r["ttl"], r["owner"]) for r in json.loads(got.stdout)] == [("signals", 1, "30d", "risk")]
    got = run.invoke(app, ["--workspace", str(ws.root), "features", "describe", "signals@1", "--json"])
    data = json.loads(got.stdout)
    assert data["source"] == {"table": "signals"}
    assert [(f["name"], f["sources"]) for f in data["features"]] == [("score", ["signals.score"]), ("band", ["signals.band"])]
    bad = tmp_path / "bad.yml"
    bad.write_text(VIEW_HEAD + "    features: [{name: s, type: money, description: d}]\n", encoding="utf-8")
    got = run.invoke(app, ["--workspace", str(ws.root), "features", "apply", str(bad)])
    assert got.exit_code == 2 and f"{bad}:8: feature_views.0.features.0.type" in got.stderr
    assert not (ws.catalog_dir / "features" / "bad.yml").exists()


def test_a_key_of_several_columns_names_each_once(ws):
    tail = "    features: [{name: score, type: float64, description: d}]\n"
    err = _error(ws, VIEW_HEAD.replace("join_key: customer_id", "join_key: [customer_id, Customer_ID]") + tail)
    assert err.line == 4 and "entity.join_key: Value error, a key column is listed twice" in err.message
    err = _error(ws, VIEW_HEAD.replace("join_key: customer_id", "join_key: []") + tail)
    assert err.line == 4 and "name the key column, or a list of key columns" in err.message

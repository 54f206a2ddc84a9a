"""Data-quality monitoring: constraints suggested from a baseline, windows of captured requests checked against
them (missing and extra fields, types, completeness, ranges, new categories), and monitors that alert on the
violations through their rules, on real SQLite and DuckDB."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import UserError
from runtimes.monitoring.data_quality import Constraints, check_constraints, suggest_constraints, value_type
from runtimes.monitoring.monitors import Rule, create_monitor, run_monitor
from runtimes.monitoring.traffic import record
from tests.test_monitoring_monitors import DAY1, DAY2, NOW, requests


def requests_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Captured request fields as a client sends them: some optional, one with few values."""
    temperature = pd.Series(rng.choice([0.0, 0.2, 0.7, 1.0], n))
    temperature[rng.random(n) < 0.2] = np.nan  # optional: 80 % of requests send it
    return pd.DataFrame({
        "max_tokens": rng.integers(16, 512, n),
        "temperature": temperature,
        "top_p": rng.uniform(0.5, 1.0, n),
        "language": rng.choice(["en", "de", "fr"], n, p=[0.7, 0.2, 0.1]),
        "stream": rng.random(n) < 0.5,
        "user": [f"user-{i}" for i in rng.integers(0, 10_000, n)],  # many values: no domain
    })


def checks(violations) -> set[tuple[str, str]]:
    return {(v.feature_name, v.constraint_check_type) for v in violations}


def test_constraints_suggested_from_a_baseline():
    c = suggest_constraints(requests_frame(np.random.default_rng(1), 2000))
    by = {f.name: f for f in c.features}
    assert c.baseline_rows == 2000
    assert by["max_tokens"].inferred_type == "integral" and by["max_tokens"].is_non_negative
    assert 16 <= by["max_tokens"].min < 30 and 490 < by["max_tokens"].max <= 511
    assert by["temperature"].inferred_type == "fractional" and 0.75 < by["temperature"].completeness < 0.85
    assert by["top_p"].inferred_type == "fractional" and by["top_p"].completeness == 1.0
    assert by["language"].inferred_type == "string" and by["language"].domains == ["de", "en", "fr"]
    assert by["stream"].inferred_type == "boolean" and by["user"].domains is None
    assert [value_type(v) for v in (None, np.nan, True, 3, 3.0, 2.5, "x")] == [
        None, None, "boolean", "integral", "integral", "fractional", "string"]


def test_a_window_like_the_baseline_has_no_violations():
    rng = np.random.default_rng(2)
    c = suggest_constraints(requests_frame(rng, 5000))
    for seed in range(20):
        window = requests_frame(np.random.default_rng(100 + seed), 500)
        assert check_constraints(c, window) == [], seed


def test_each_kind_of_violation_is_found_and_described():
    rng = np.random.default_rng(3)
    c = suggest_constraints(requests_frame(rng, 3000))
    window = requests_frame(rng, 400)
    window = window.drop(columns=["stream"])  # a field clients stopped sending
    window["seed"] = 7  # a field the baseline never had
    window["max_tokens"] = window["max_tokens"].astype(object)
    window.loc[:99, "max_tokens"] = "256"  # a quarter of the values sent as strings
    window.loc[:199, "temperature"] = np.nan  # half the requests leave it out
    window.loc[:29, "top_p"] = 1.5  # 7.5 % outside [0.5, 1.0]
    window.loc[:59, "language"] = "ja"  # a new category in 15 % of requests
    found = check_constraints(c, window)
    assert checks(found) == {("stream", "missing_column_check"), ("seed", "extra_column_check"),
                             ("max_tokens", "data_type_check"), ("temperature", "completeness_check"),
                             ("top_p", "range_check"), ("language", "categorical_values_check")}
    text = {v.constraint_check_type: v.description for v in found}
    assert "25.0% of its values are not (string 100" in text["data_type_check"]
    assert "30 of 400 values of `top_p` (7.5%) lie outside the baseline's range [0.5" in text["range_check"]
    assert "15.0% of the values of `language` are new categories: `ja` (60)" in text["categorical_values_check"]
    assert "has a value in" in text["completeness_check"] and "the baseline in 79.3%" in text["completeness_check"]


def test_thresholds_let_a_little_through_and_negatives_always_count():
    rng = np.random.default_rng(4)
    c = suggest_constraints(requests_frame(rng, 3000))
    window = requests_frame(rng, 1000)
    window.loc[:4, "language"] = "ja"  # 0.5 % new: under the 1 % allowed
    window.loc[:4, "top_p"] = 1.01  # 0.5 % outside the range: allowed
    assert check_constraints(c, window) == []
    window.loc[0, "max_tokens"] = -1  # the baseline had no negative value: one is a violation
    assert checks(check_constraints(c, window)) == {("max_tokens", "range_check")}
    strict = Constraints.parse({**c.model_dump(), "monitoring_config": {"domain_content_threshold": 0}})
    assert ("language", "categorical_values_check") in checks(check_constraints(strict, window))


def test_edited_constraints_are_checked_with_a_clear_error():
    c = suggest_constraints(requests_frame(np.random.default_rng(5), 100)).model_dump()
    c["features"][0]["inferred_type"] = "number"
    with pytest.raises(UserError, match=r"constraints.json: `features.0.inferred_type`: Input should be 'integral'"):
        Constraints.parse(c, "constraints.json")
    with pytest.raises(ValueError, match="at least one row"):
        suggest_constraints(pd.DataFrame({"a": []}))


def test_monitor_alerts_on_violations_against_the_previous_window(workspace):
    record(workspace, requests(DAY1, 120, seed=1))
    record(workspace, requests(DAY2, 120, shifted=True, seed=2))  # French half the time, replies 3× as long
    create_monitor(workspace, {"name": "tickets-quality", "endpoint": "tickets", "features": [
        "language", "response_words", "prompt_length"], "rules": [Rule.parse("data_quality").model_dump()]}, now=NOW)
    run = run_monitor(workspace, "tickets-quality", now=NOW)
    assert run.status == "alert" and [a.rule for a in run.alerts] == ["data-quality violations"]
    dq = run.summary["data_quality"]
    assert dq["constraints"] == "suggested from the previous window" and dq["checked_rows"] > 100
    assert {(v["feature_name"], v["constraint_check_type"]) for v in dq["violations"]} == {
        ("language", "categorical_values_check"), ("response_words", "range_check")}
    assert "language: categorical_values_check" in run.alerts[0].message
    assert "data quality: 2 violations" in run.describe()
    assert "## Data quality" in (Path(run.report_dir) / "report.md").read_text()


def test_steady_traffic_raises_no_quality_alert(workspace):
    record(workspace, requests(DAY1, 120, seed=1))
    record(workspace, requests(DAY2, 120, seed=5))
    create_monitor(workspace, {"name": "steady", "endpoint": "tickets", "features": ["language", "response_words"],
                               "rules": [{"kind": "data_quality"}]}, now=NOW)
    run = run_monitor(workspace, "steady", now=NOW)
    assert run.summary["data_quality"]["violations"] == [] and run.alerts == [] and run.status == "ok"


@pytest.mark.slow
def test_constraints_from_the_training_data_are_stored_and_edits_are_kept(workspace, tmp_path):
    from runtimes.monitoring.baselines import build_baseline, constraints_path
    from tests.test_monitoring_baselines import register, training_table

    register(workspace, tmp_path, training_table(workspace))
    build_baseline(workspace, "tiny-qwen3-sft@1")
    path = constraints_path(workspace, "tiny-qwen3-sft@1")
    stored = json.loads(path.read_text())
    assert {f["name"] for f in stored["features"]} >= {"prompt_length", "response_words", "language", "topic"}
    assert next(f for f in stored["features"] if f["name"] == "language")["domains"] == ["en"]
    create_monitor(workspace, {"name": "vs-training", "endpoint": "tickets", "reference": "baseline",
                               "model": "tiny-qwen3-sft@1", "rules": [{"kind": "data_quality"}]}, now=NOW)
    record(workspace, requests(NOW - dt.timedelta(days=1), 100, shifted=True, seed=7))
    run = run_monitor(workspace, "vs-training", now=NOW)
    found = {(v["feature_name"], v["constraint_check_type"]) for v in run.summary["data_quality"]["violations"]}
    assert ("language", "categorical_values_check") in found and run.summary["data_quality"]["constraints"] == str(path)
    # A person widens the language domain: French is no longer a violation, the rest still is.
    for f in stored["features"]:
        if f["name"] == "language":
            f["domains"] = ["en", "fr"]
    path.write_text(json.dumps(stored))
    again = run_monitor(workspace, "vs-training", now=NOW + dt.timedelta(minutes=5))
    found = {(v["feature_name"], v["constraint_check_type"]) for v in again.summary["data_quality"]["violations"]}
    assert ("language", "categorical_values_check") not in found and found
    path.write_text("{ not json")
    with pytest.raises(UserError, match=r"constraints.json: line 1: not JSON"):
        run_monitor(workspace, "vs-training", now=NOW + dt.timedelta(minutes=10))

"""Monitors on real SQLite and DuckDB: traffic recorded, a shift in it raises alerts with the test and size of the
drift, reports with plots, quality and per-group figures from feedback, schedules that survive restarts."""
from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest

from core.errors import UserError
from runtimes.monitoring.monitor_store import MonitorStore
from runtimes.monitoring.monitors import MonitorSpec, Rule, create_monitor, endpoint_report, run_due, run_monitor
from runtimes.monitoring.traffic import TrafficRecord, record, record_feedback, render_chat

NOW = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.timezone.utc)
EN = ["Where is my order {n}? It has not arrived yet and the tracking page says nothing.",
      "I want a refund for order {n}, the blender arrived broken.",
      "How do I change the delivery address on my account before order {n} ships?",
      "Can you tell me the revenue of last month for store {n}?"]
FR = ["Où est ma commande {n} ? Elle n'est toujours pas arrivée chez moi.",
      "Je voudrais un remboursement pour la commande {n}, le mixeur est cassé."]
WORDS = "sorry your order ships tomorrow we will refund the item and send a new label today".split()


def requests(day: dt.datetime, n: int, *, shifted: bool = False, endpoint: str = "tickets", seed: int = 0,
             prefix: str = "") -> list[TrafficRecord]:
    """`n` realistic chat requests over the 24 hours after `day`; `shifted` traffic is in French half of the
    time, gets replies three times as long and answers slower."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        french = shifted and rng.random() < 0.5
        prompt = rng.choice(FR if french else EN).format(n=rng.randint(1000, 99999))
        words = rng.randint(45, 90) if shifted else rng.randint(10, 30)
        reply = " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."
        failed = rng.random() < 0.03
        out.append(TrafficRecord(
            request_id=f"{prefix}{endpoint}-{day:%m%d}-{i}", endpoint=endpoint, model="tiny-qwen3-sft@1",
            ts=day + dt.timedelta(seconds=i * 86_000 / n), route="chat",
            prompt=render_chat([{"role": "system", "content": "You answer support tickets."},
                                {"role": "user", "content": prompt}]),
            response="upstream model failed" if failed else reply, status=500 if failed else 200,
            prompt_tokens=len(prompt) // 4 + 9, completion_tokens=0 if failed else words + rng.randint(0, 5),
            latency_ms=rng.gauss(900 if shifted else 300, 40), group=rng.choice(["gold", "basic"])))
    return out


DAY1, DAY2 = NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=1)


def test_a_shift_in_traffic_raises_alerts_with_test_and_size(workspace):
    record(workspace, requests(DAY1, 120, seed=1))
    record(workspace, requests(DAY2, 120, shifted=True, seed=2))
    m = create_monitor(workspace, {"name": "tickets-drift", "endpoint": "tickets",
                                   "rules": [Rule.parse("drift:response_length").model_dump(),
                                             {"kind": "dataset_drift"}, Rule.parse("p95_latency>2000").model_dump()]},
                       now=NOW)
    run = run_monitor(workspace, "tickets-drift", now=NOW)
    assert run.status == "alert"
    assert [a.rule for a in run.alerts] == ["drift of response_length", "dataset drift"]
    length = run.alerts[0]
    assert length.feature == "response_length" and length.test == "K-S p_value" and length.statistic < 0.05
    assert "response_length drifted on `tickets`: K-S p_value" in length.message and "mean 1" in length.message
    assert "language" in run.summary["drift"]["drifted_columns"]
    assert run.summary["traffic"]["requests"] == 120 and 0 < run.summary["traffic"]["error_rate"] < 0.2
    assert "ingested 240 spooled requests" in run.summary["notes"]

    stored = MonitorStore(workspace).alerts(monitor_id=m.id)
    assert {a.id for a in stored} == {a.id for a in run.alerts}
    folder = Path(run.report_dir)
    assert {"report.json", "report.md", "summary.png", "response_length.png", "language.png"} <= {
        p.name for p in folder.iterdir()}
    assert (folder / "summary.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((folder / "report.json").read_text())
    assert report["spec"]["name"] == "tickets-drift" and report["drift"]["dataset_drift"] is True
    assert "| response_length | K-S p_value |" in (folder / "report.md").read_text()

    # The same drift an hour later is still firing: recorded in the run, not alerted again.
    again = run_monitor(workspace, m.id, now=NOW + dt.timedelta(hours=1))
    assert again.status == "alert" and again.alerts == [] and "drift of response_length" in again.summary["fired"]
    assert len(MonitorStore(workspace).alerts(monitor_id=m.id)) == 2


def test_steady_traffic_raises_nothing(workspace):
    record(workspace, requests(DAY1, 150, seed=3) + requests(DAY2, 150, seed=4))
    create_monitor(workspace, {"name": "steady", "endpoint": "tickets",
                               "rules": [{"kind": "feature_drift", "feature": "response_length"},
                                         {"kind": "dataset_drift"}]}, now=NOW)
    run = run_monitor(workspace, "steady", now=NOW)
    assert run.status == "ok" and run.alerts == []
    assert not run.summary["drift"]["dataset_drift"]
    assert "response_length" not in run.summary["drift"]["drifted_columns"]
    assert not any(p.name == "response_length.png" for p in Path(run.report_dir).iterdir())


def test_other_endpoints_and_too_little_traffic(workspace):
    record(workspace, requests(DAY2, 10, seed=5) + requests(DAY2, 200, endpoint="billing", seed=6))
    create_monitor(workspace, {"name": "quiet", "endpoint": "tickets", "min_rows": 30}, now=NOW)
    run = run_monitor(workspace, "quiet", now=NOW)
    assert run.status == "ok" and run.summary["traffic"]["requests"] == 10 and run.summary["drift"] is None
    assert any("no drift test" in n for n in run.summary["notes"])
    create_monitor(workspace, {"name": "nobody", "endpoint": "unused"}, now=NOW)
    assert run_monitor(workspace, "nobody", now=NOW).status == "no_traffic"


def test_quality_and_groups_from_feedback(workspace):
    traffic = requests(DAY2, 80, seed=7)
    record(workspace, traffic)
    for i, r in enumerate(traffic):
        # Gold customers' answers are right, basic customers' mostly wrong: the per-group view shows it.
        record_feedback(workspace, r.request_id, correct=(r.group == "gold") or i % 4 == 0, score=0.9 if r.group == "gold" else 0.4)
    create_monitor(workspace, {"name": "quality", "endpoint": "tickets",
                               "rules": [Rule.parse("accuracy<0.8").model_dump(),
                                         Rule.parse("error_rate>0.5").model_dump()]}, now=NOW)
    run = run_monitor(workspace, "quality", now=NOW)
    q = run.summary["quality"]
    assert q["labelled"] == 80 and 0.5 < q["accuracy"] < 0.8
    assert [a.rule for a in run.alerts] == ["accuracy below 0.8"]
    groups = {g["group"]: g for g in run.summary["groups"]}
    assert groups["gold"]["accuracy"] == 1.0 and groups["basic"]["accuracy"] < 0.5
    assert groups["gold"]["mean_score"] == pytest.approx(0.9)
    assert groups["gold"]["requests"] + groups["basic"]["requests"] == 80
    assert "## Per group" in (Path(run.report_dir) / "report.md").read_text()


def test_schedule_runs_due_monitors_once_and_survives_restarts(workspace):
    record(workspace, requests(DAY2, 40, seed=8))
    create_monitor(workspace, {"name": "hourly", "endpoint": "tickets", "every": "1h"}, now=NOW)
    create_monitor(workspace, {"name": "daily", "endpoint": "tickets", "every": "1d"}, now=NOW)
    assert sorted(r.monitor for r in run_due(workspace, now=NOW)) == ["daily", "hourly"]
    assert run_due(workspace, now=NOW + dt.timedelta(minutes=30)) == []
    # A new store (a restarted process) reads the same next-run times.
    assert [r.monitor for r in run_due(workspace, now=NOW + dt.timedelta(hours=1))] == ["hourly"]
    nxt = {m.name: m.next_run_at for m in MonitorStore(workspace).list()}
    assert nxt["daily"] == (NOW + dt.timedelta(days=1)).timestamp()
    assert len(MonitorStore(workspace).runs(MonitorStore(workspace).get("hourly").id)) == 2
    store = MonitorStore(workspace)
    store.set_enabled("daily", False)
    assert run_due(workspace, now=NOW + dt.timedelta(days=2)) != [] and store.get("daily").last_run_at is not None
    assert all(r.monitor == "hourly" for r in run_due(workspace, now=NOW + dt.timedelta(days=3)))


def test_a_failing_monitor_does_not_stop_the_others(workspace):
    record(workspace, requests(DAY2, 40, seed=10))
    create_monitor(workspace, {"name": "good", "endpoint": "tickets"}, now=NOW)
    bad = create_monitor(workspace, {"name": "bad", "endpoint": "tickets"}, now=NOW)
    # The stored spec was damaged by hand: its run fails, is recorded, and the other monitor still runs.
    import sqlite3

    with sqlite3.connect(workspace.state_path) as db:
        db.execute("UPDATE monitors SET spec = ? WHERE id = ?", (json.dumps({"name": "bad", "endpoint": "tickets",
                                                                            "window": "soon"}), bad.id))
    outcomes = run_due(workspace, now=NOW)
    assert any(isinstance(o, str) and "monitor `bad` failed" in o and "soon" in o for o in outcomes)
    assert any(not isinstance(o, str) and o.monitor == "good" for o in outcomes)
    failed = MonitorStore(workspace).runs(bad.id)
    assert [r.status for r in failed] == ["failed"] and "not a duration" in (failed[0].error or "")


def test_endpoint_report_stores_no_monitor(workspace):
    record(workspace, requests(NOW - dt.timedelta(days=14), 100, seed=11))
    record(workspace, requests(NOW - dt.timedelta(days=5), 100, shifted=True, seed=12))
    run = endpoint_report(workspace, "tickets", period="7d", now=NOW)
    assert run.status == "drift" and "response_length" in run.summary["drift"]["drifted_columns"]
    assert MonitorStore(workspace).list() == [] and MonitorStore(workspace).alerts() == []
    assert (Path(run.report_dir) / "response_length.png").exists()


def test_bad_monitors_are_refused_with_reasons(workspace):
    with pytest.raises(UserError, match="`reply_size` is not a feature"):
        MonitorSpec.parse({"name": "x", "endpoint": "e", "features": ["reply_size"]})
    with pytest.raises(UserError, match="window.*not a duration"):
        MonitorSpec.parse({"name": "x", "endpoint": "e", "window": "a while"})
    with pytest.raises(UserError, match="model=NAME@VERSION"):
        MonitorSpec.parse({"name": "x", "endpoint": "e", "reference": "baseline"})
    with pytest.raises(UserError, match="latency_ms.*only in served traffic"):
        MonitorSpec.parse({"name": "x", "endpoint": "e", "reference": "baseline", "model": "m@1",
                           "features": ["latency_ms"]})
    with pytest.raises(UserError, match="watches `response_length`, which this monitor does not test"):
        MonitorSpec.parse({"name": "x", "endpoint": "e", "features": ["language"],
                           "rules": [{"kind": "feature_drift", "feature": "response_length"}]})
    with pytest.raises(UserError, match="not a rule"):
        Rule.parse("when it feels off")
    with pytest.raises(UserError, match="accuracy<0.8"):
        Rule.parse("accuracy>0.8")
    with pytest.raises(UserError, match="name.*letters"):
        MonitorSpec.parse({"name": "no spaces please", "endpoint": "e"})
    create_monitor(workspace, {"name": "once", "endpoint": "e"})
    with pytest.raises(UserError, match="already exists"):
        create_monitor(workspace, {"name": "once", "endpoint": "e"})
    with pytest.raises(UserError, match="no monitor `onse`; did you mean `once`"):
        run_monitor(workspace, "onse")
    assert Rule.parse("p95_latency > 2000ms").text() == "p95 latency above 2000 ms"
    assert Rule.parse("error_rate>0.05").text() == "error rate above 5.0%"

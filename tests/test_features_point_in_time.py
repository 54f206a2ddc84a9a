"""Point-in-time training sets: each label row gets the latest feature value at or before its timestamp and within
the view's TTL, never a value from after it; checked case by case and against a plain-Python reference."""
from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from core.errors import UserError
from runtimes.features.offline_store import training_set
from runtimes.features.registry import apply
from tests.features_workspace import at, make_signals, signals_view, write_view


def labels(*rows) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [r[0] for r in rows], "event_timestamp": [r[1] for r in rows]})


def scores(ws, frame, refs=("signals:score",), **kw) -> list:
    got = training_set(ws, frame, list(refs), **kw)
    return [None if pd.isna(v) else v for v in got["score"]]


# ---- exact timestamps and the future -------------------------------------------------------------------


def test_a_value_stamped_exactly_at_the_label_time_is_used(workspace):
    make_signals(workspace, [(1, at(1), 10.0), (1, at(2), 20.0)])
    signals_view(workspace)
    apply(workspace)
    assert scores(workspace, labels((1, at(2)))) == [20.0]


def test_label_times_with_a_zone_are_compared_in_utc(workspace):
    make_signals(workspace, [(1, at(1), 10.0), (1, at(1, seconds=3600), 20.0)])
    signals_view(workspace)
    apply(workspace)
    # 01:30 in UTC+2 is 23:30 UTC the day before: neither value exists yet. 03:30+02:00 is 01:30 UTC: the second.
    frame = labels((1, pd.Timestamp(at(1, seconds=5400)).tz_localize("Etc/GMT-2")),
                   (1, pd.Timestamp(at(1, seconds=12600)).tz_localize("Etc/GMT-2")))
    assert scores(workspace, frame) == [None, 20.0]


def test_a_value_one_microsecond_after_the_label_is_not_used(workspace):
    make_signals(workspace, [(1, at(1), 10.0), (1, at(2, seconds=1e-6), 99.0)])
    signals_view(workspace)
    apply(workspace)
    assert scores(workspace, labels((1, at(2)))) == [10.0]


def test_planted_future_values_never_leak(workspace):
    """Sentinels are planted just after every label (1 µs and 1 s) and after each customer's last label (1 µs and a
    year): no joined value may be stamped after its label, and the after-the-last-label sentinels never appear."""
    rng = random.Random(7)
    rows, label_rows = [], []
    for cid in range(1, 40):
        for _ in range(5):
            rows.append((cid, at(rng.uniform(0, 100)), float(rng.randint(0, 49))))
        times = sorted(at(rng.uniform(0, 100)) for _ in range(4))
        label_rows += [(cid, t) for t in times]
        for t in times:
            rows += [(cid, t + dt.timedelta(microseconds=1), 1000.0), (cid, t + dt.timedelta(seconds=1), 1000.0)]
        rows += [(cid, times[-1] + dt.timedelta(microseconds=1), 2000.0), (cid, times[-1] + dt.timedelta(days=365), 2000.0)]
    make_signals(workspace, rows)
    write_view(workspace, """
        feature_views:
          - name: stamped
            owner: risk
            entity: {name: customer, join_key: customer_id}
            source: {table: signals}
            event_time: seen_at
            features:
              - {name: score, type: float64, description: the score}
              - {name: stamped_at, type: timestamp, description: when the score was stamped, expr: seen_at}
        """)
    apply(workspace)
    got = training_set(workspace, labels(*label_rows), ["stamped"])
    assert len(got) == len(label_rows)
    joined = got.dropna(subset=["stamped_at"])
    assert len(joined) > len(label_rows) // 2
    assert (joined["stamped_at"] <= joined["event_timestamp"]).all()
    assert not (got["score"] == 2000.0).any()
    # Sentinels after an earlier label are rightly seen by a later one: the planted rows do reach the join.
    assert (got["score"] == 1000.0).any()


def test_matches_a_plain_python_reference_on_random_data(workspace):
    rng = random.Random(11)
    rows = [(rng.randint(1, 15), at(rng.uniform(0, 60)), float(i)) for i in range(600)]
    make_signals(workspace, rows)
    signals_view(workspace, ttl="7d")
    apply(workspace)
    label_rows = [(rng.randint(1, 18), at(rng.uniform(-5, 70))) for _ in range(400)]
    got = scores(workspace, labels(*label_rows))

    def reference(cid, t):
        seen = [(ts, s) for c, ts, s in rows if c == cid and t - pd.Timedelta(days=7) <= ts <= t]
        return max(seen)[1] if seen else None

    assert got == [reference(c, t) for c, t in label_rows]


# ---- TTL ---------------------------------------------------------------------------------------------------


def test_ttl_keeps_a_value_exactly_ttl_old_and_drops_one_a_second_older(workspace):
    make_signals(workspace, [(1, at(0), 10.0), (2, at(0, seconds=-1), 20.0)])
    signals_view(workspace, ttl="1d")
    apply(workspace)
    assert scores(workspace, labels((1, at(1)), (2, at(1)))) == [10.0, None]


def test_ttl_expiry_does_not_fall_back_to_an_older_value(workspace):
    make_signals(workspace, [(1, at(0), 10.0), (1, at(5), 50.0)])
    signals_view(workspace, ttl="2d")
    apply(workspace)
    # On day 9 the day-5 value is expired; the day-0 value is older still and must not come back.
    assert scores(workspace, labels((1, at(6)), (1, at(9)), (1, at(1)), (1, at(3)))) == [50.0, None, 10.0, None]


def test_no_ttl_means_a_value_never_expires(workspace):
    make_signals(workspace, [(1, at(0), 10.0)])
    signals_view(workspace)
    apply(workspace)
    assert scores(workspace, labels((1, at(3000)))) == [10.0]


# ---- late rows, several and missing entities -----------------------------------------------------------


def test_late_arriving_rows_are_placed_by_event_time_not_arrival(workspace):
    make_signals(workspace, [(1, at(1), 10.0), (1, at(10), 100.0)])
    signals_view(workspace)
    apply(workspace)
    frame = labels((1, at(5)), (1, at(12)))
    assert scores(workspace, frame) == [10.0, 100.0]
    # A row for day 4 arrives after the first build; it is the latest before day 5, not before day 12.
    make_signals(workspace, [(1, at(4), 40.0)])
    assert scores(workspace, frame) == [40.0, 100.0]
    # A row from after every label arrives late too: it changes nothing.
    make_signals(workspace, [(1, at(20), 200.0)])
    assert scores(workspace, frame) == [40.0, 100.0]


def test_each_entity_sees_only_its_own_rows(workspace):
    make_signals(workspace, [(1, at(1), 11.0), (2, at(2), 22.0), (1, at(3), 13.0), (3, at(0.5), 30.0)])
    signals_view(workspace)
    apply(workspace)
    frame = labels((2, at(3)), (1, at(2)), (1, at(3)), (3, at(3)), (2, at(1)))
    assert scores(workspace, frame) == [22.0, 11.0, 13.0, 30.0, None]


def test_missing_entities_get_nulls_and_every_label_row_stays_in_order(workspace):
    make_signals(workspace, [(1, at(1), 10.0)])
    signals_view(workspace)
    apply(workspace)
    frame = labels((404, at(2)), (1, at(2)), (404, at(2)), (1, at(0)), (1, at(2)))
    got = training_set(workspace, frame, ["signals"])
    assert list(got["customer_id"]) == [404, 1, 404, 1, 1]
    assert [None if pd.isna(v) else v for v in got["score"]] == [None, 10.0, None, None, 10.0]
    assert [None if pd.isna(v) else v for v in got["band"]] == [None, "low", None, None, "low"]


def test_two_views_with_their_own_ttls_join_on_the_same_labels(workspace):
    make_signals(workspace, [(1, at(0), 10.0), (1, at(8), 80.0)])
    write_view(workspace, """
        feature_views:
          - name: fresh
            owner: risk
            entity: {name: customer, join_key: customer_id}
            source: {table: signals}
            event_time: seen_at
            ttl: 1d
            features: [{name: score, type: float64, description: score within a day}]
          - name: slow
            owner: risk
            entity: {name: customer, join_key: customer_id}
            source: {sql: "SELECT customer_id, seen_at, score * 2 AS doubled FROM signals"}
            event_time: seen_at
            features: [{name: score, type: float64, description: doubled score, expr: doubled}]
        """)
    apply(workspace)
    with pytest.raises(UserError, match="two columns would be named `score`"):
        training_set(workspace, labels((1, at(3))), ["fresh", "slow"])
    got = training_set(workspace, labels((1, at(3)), (1, at(8.5))), ["fresh", "slow"], full_names=True)
    assert [None if pd.isna(v) else v for v in got["fresh__score"]] == [None, 80.0]
    assert list(got["slow__score"]) == [20.0, 160.0]


def test_tables_named_like_the_joins_internal_aliases_are_still_the_tables(workspace):
    from catalog.warehouse import connect_writer

    make_signals(workspace, [(1, at(1), 10.0)])
    with connect_writer(workspace) as con:
        for name in ("e", "s", "f0", "src"):
            con.execute(f'CREATE TABLE "{name}" AS SELECT customer_id, seen_at, score + {len(name)} AS score FROM signals')
    write_view(workspace, "feature_views:\n" + "".join(f"""
          - name: from_{name}
            owner: risk
            entity: {{name: customer, join_key: customer_id}}
            source: {{table: "{name}"}}
            event_time: seen_at
            features: [{{name: score, type: float64, description: score plus {len(name)}}}]
        """ for name in ("e", "s", "f0", "src")))
    apply(workspace)
    got = training_set(workspace, labels((1, at(2))), ["from_e", "from_s", "from_f0", "from_src"], full_names=True)
    assert [got[f"from_{n}__score"][0] for n in ("e", "s", "f0", "src")] == [11.0, 11.0, 12.0, 13.0]


def test_labels_from_a_catalog_table_become_a_derived_table_with_lineage(workspace):
    from catalog.store import CatalogStore
    from catalog.warehouse import connect_reader, connect_writer

    make_signals(workspace, [(1, at(1), 10.0), (2, at(1), 60.0), (1, at(3), 30.0)])  # Jan 2, Jan 2, Jan 4
    with connect_writer(workspace) as con:
        con.execute("CREATE TABLE churn_labels AS SELECT * FROM (VALUES (1, TIMESTAMP '2025-01-04', true), "
                    "(2, TIMESTAMP '2025-01-02', false), (1, TIMESTAMP '2025-01-03', false), (2, TIMESTAMP '2025-01-01', false)) t(customer_id, label_at, churned)")
    signals_view(workspace)
    apply(workspace)
    table = training_set(workspace, "churn_labels", ["signals:score"], timestamp_column="label_at", into="churn_train")
    assert [c.name for c in table.columns] == ["customer_id", "label_at", "churned", "score"]
    with connect_reader(workspace) as con:
        rows = con.execute("SELECT customer_id, label_at, score FROM churn_train ORDER BY label_at, customer_id").fetchall()
    assert [(r[0], r[2]) for r in rows] == [(2, None), (2, 60.0), (1, 10.0), (1, 30.0)]
    lineage = {x.column: x.sources for x in CatalogStore(workspace).load().lineage if x.table == "churn_train"}
    assert lineage["score"] == ["signals.score"]


def test_a_label_table_without_the_entity_key_or_timestamp_is_refused_by_name(workspace):
    make_signals(workspace, [(1, at(1), 10.0)])
    signals_view(workspace)
    apply(workspace)
    with pytest.raises(UserError, match="no column `event_timestamp` in the labels"):
        training_set(workspace, pd.DataFrame({"customer_id": [1], "ts": [at(2)]}), ["signals"])
    with pytest.raises(UserError, match="no column `customer_id` in the labels.*entity key of feature view `signals`"):
        training_set(workspace, pd.DataFrame({"cust": [1], "event_timestamp": [at(2)]}), ["signals"])

"""The online store and materialization: latest values by entity key, TTL at read time, incremental runs from the
recorded end of the last one, the Redis setting refused clearly without its package, PII grants on every path,
and the CLI's materialize and get."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from catalog.metadata import Column, PiiTag, Table
from catalog.store import CatalogStore
from catalog.warehouse import connect_writer
from cli.main import app
from core.errors import UserError
from core.principal import Principal
from runtimes.features.materialize import materialize, watermark
from runtimes.features.offline_store import training_set
from runtimes.features.online_features import OnlineReader, get_online_features
from runtimes.features.registry import apply, get_version
from tests.features_workspace import at, make_signals, signals_view, write_view

UTC = dt.timezone.utc


def ts(d) -> float:
    return d.replace(tzinfo=UTC).timestamp()


@pytest.fixture
def ws(workspace):
    make_signals(workspace, [(1, at(1), 10.0), (1, at(3), 30.0), (2, at(2), 70.0), (3, at(9), 90.0)])
    signals_view(workspace, ttl="2d")
    apply(workspace)
    return workspace


def test_reading_a_view_never_materialized_says_what_to_run(ws):
    with pytest.raises(UserError, match=r"feature view `signals@1` is not materialized yet: run `lathe features "
                                        r"materialize signals` first"):
        get_online_features(ws, ["signals"], [1])


def test_reads_the_latest_value_per_key_in_the_order_asked(ws):
    materialize(ws, until=at(5).replace(tzinfo=UTC))
    got = get_online_features(ws, ["signals"], [2, "1", 3, 404], now=ts(at(4)))
    assert got == [{"score": 70.0, "band": "high"}, {"score": 30.0, "band": "low"},
                   {"score": None, "band": None},  # stamped day 9: after the materialized end
                   {"score": None, "band": None}]


def test_a_value_older_than_the_ttl_reads_as_none(ws):
    materialize(ws, until=at(5).replace(tzinfo=UTC))
    reader = OnlineReader(ws, ["signals:score"])
    assert reader.get([1, 2], now=ts(at(5))) == [{"score": 30.0}, {"score": None}]  # day 3 ok, day 2 is > 2 days old
    assert reader.get([1], now=ts(at(3))) == [{"score": 30.0}]


def test_materialization_is_incremental_from_the_recorded_end(ws):
    first = materialize(ws, until=at(5).replace(tzinfo=UTC))
    assert (first[0].start, first[0].rows) == (None, 2)
    assert watermark(ws, get_version(ws, "signals")) == at(5).isoformat()
    make_signals(ws, [(2, at(6), 60.0), (1, at(4), 999.0)])  # the day-4 row arrives after the run that covered it
    second = materialize(ws, until=at(10).replace(tzinfo=UTC))
    assert (second[0].start, second[0].rows) == (at(5).isoformat(), 2)  # customers 2 and 3; day 4 is not re-read
    assert get_online_features(ws, ["signals:score"], [1, 2, 3], now=ts(at(8))) == [
        {"score": None}, {"score": 60.0}, {"score": 90.0}]
    assert materialize(ws, until=at(10).replace(tzinfo=UTC))[0].rows == 0
    full = materialize(ws, until=at(10).replace(tzinfo=UTC), full=True)
    assert full[0].rows == 3
    assert get_online_features(ws, ["signals:score"], [1], now=ts(at(5)))[0]["score"] == 999.0


def test_an_older_row_never_overwrites_a_newer_one(ws):
    from runtimes.features.online_store import SqliteOnlineStore

    store = SqliteOnlineStore(ws.root / "features" / "online.sqlite")
    store.write("t", ["x"], [("k", 200.0, "new")])
    store.write("t", ["x"], [("k", 100.0, "old")])
    assert store.read("t", ["x"], ["k"]) == {"k": (200.0, ["new"])}


def test_a_new_version_is_materialized_from_the_start_into_its_own_table(ws):
    materialize(ws, until=at(5).replace(tzinfo=UTC))
    signals_view(ws, ttl="30d")
    (applied,) = apply(ws)
    assert applied.version.version == 2
    (run,) = materialize(ws, until=at(5).replace(tzinfo=UTC))
    assert (run.ref, run.start, run.rows) == ("signals@2", None, 2)
    assert get_online_features(ws, ["signals@2:score"], [2], now=ts(at(20))) == [{"score": 70.0}]  # 30-day TTL
    assert get_online_features(ws, ["signals@1:score"], [2], now=ts(at(20))) == [{"score": None}]  # 2-day TTL
    with pytest.raises(UserError, match="feature view `signals` is asked for in two versions; pick one"):
        get_online_features(ws, ["signals@1:score", "signals@2:score"], [2])


def test_redis_configured_without_its_package_is_refused_clearly(ws):
    try:
        import redis  # noqa: F401
        pytest.skip("redis is installed here")
    except ImportError:
        pass
    with ws.settings_path.open("a", encoding="utf-8") as f:
        f.write('\n[features]\nonline_store = "redis://localhost:6379/0"\n')
    from core.workspace import Workspace

    fresh = Workspace(ws.root)
    with pytest.raises(UserError, match=r"set to Redis \(redis://localhost:6379/0\) but the `redis` package is not "
                                        r"installed: `pip install redis`"):
        materialize(fresh, until=at(5).replace(tzinfo=UTC))


def test_an_unknown_online_store_setting_is_refused(ws):
    with ws.settings_path.open("a", encoding="utf-8") as f:
        f.write('\n[features]\nonline_store = "memcached://x"\n')
    from core.workspace import Workspace

    with pytest.raises(UserError, match="is not a store: write \"sqlite\""):
        get_online_features(Workspace(ws.root), ["signals"], [1])


# ---- PII ---------------------------------------------------------------------------------------------------


@pytest.fixture
def pii_ws(ws):
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE contacts AS SELECT * FROM (VALUES (1, 'ann@example.com', TIMESTAMP '2025-01-02', 3), "
                    "(2, 'bo@example.com', TIMESTAMP '2025-01-03', 5)) t(customer_id, email, updated_at, visits)")
    with CatalogStore(ws).transaction() as txn:
        txn.put_table(Table(name="contacts", columns=[
            Column(name="customer_id", type="INTEGER"), Column(name="email", type="VARCHAR", pii=PiiTag.email),
            Column(name="updated_at", type="TIMESTAMP"), Column(name="visits", type="INTEGER")]))
    write_view(ws, """
        feature_views:
          - name: contact
            owner: crm
            entity: {name: customer, join_key: customer_id}
            source: {table: contacts}
            event_time: updated_at
            features:
              - {name: email_domain, type: string, description: the email's domain, expr: "split_part(email, '@', 2)"}
          - name: visits
            owner: crm
            entity: {name: customer, join_key: customer_id}
            source: {sql: "SELECT customer_id, updated_at, visits FROM contacts"}
            event_time: updated_at
            features:
              - {name: visits, type: int64, description: visits so far}
          - name: starred
            owner: crm
            entity: {name: customer, join_key: customer_id}
            source: {sql: "WITH c AS (SELECT * FROM contacts) SELECT * FROM c WHERE email LIKE '%@%'"}
            event_time: updated_at
            features:
              - {name: visits, type: int64, description: visits of customers with an email address}
        """, name="contacts.yml")
    apply(ws)
    return ws


VIEWER = Principal(name="vic", roles={"analyst"})
GRANTED = Principal(name="gia", roles={"analyst"}, grants={"pii:email"})


def test_a_feature_from_a_pii_column_needs_the_grant_a_query_needs(pii_ws):
    frame = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [at(5), at(5)]})
    with pytest.raises(UserError, match=r"feature view `contact` reads PII you have no grant for: contacts.email "
                                        r"\(pii: email\); ask an admin for the grant `pii:email`"):
        training_set(pii_ws, frame, ["contact"], principal=VIEWER)
    assert list(training_set(pii_ws, frame, ["visits"], principal=VIEWER)["visits"]) == [3, 5]
    # A filter on a PII column reads it too, through a star and a CTE.
    with pytest.raises(UserError, match=r"feature view `starred` reads PII you have no grant for: contacts.email"):
        training_set(pii_ws, frame, ["starred"], principal=VIEWER)
    # Labels read from the warehouse are masked for the principal as any query is.
    masked = training_set(pii_ws, "SELECT customer_id, updated_at AS event_timestamp, email FROM contacts", ["visits"],
                          principal=VIEWER)
    assert list(masked["visits"]) == [3, 5] and not masked["email"].str.contains("example.com").any()
    got = training_set(pii_ws, frame, ["contact"], principal=GRANTED)
    assert list(got["email_domain"]) == ["example.com", "example.com"]
    with pytest.raises(UserError, match="reads PII you have no grant for"):
        materialize(pii_ws, ["contact"], principal=VIEWER)
    materialize(pii_ws, ["contact", "visits"], principal=GRANTED, until=at(5).replace(tzinfo=UTC))
    with pytest.raises(UserError, match=r"`contact@1` serves PII you have no grant for: contacts.email"):
        OnlineReader(pii_ws, ["contact"], principal=VIEWER)
    assert OnlineReader(pii_ws, ["visits"], principal=VIEWER).get([2]) == [{"visits": 5}]
    assert OnlineReader(pii_ws, ["contact"], principal=GRANTED).get([1]) == [{"email_domain": "example.com"}]


# ---- CLI ---------------------------------------------------------------------------------------------------


def test_cli_materialize_and_get(ws):
    run = CliRunner()
    base = ["--workspace", str(ws.root), "features"]
    got = run.invoke(app, [*base, "materialize", "--until", "2025-01-06", "--json"])
    assert got.exit_code == 0, got.output
    assert [(m["ref"], m["rows"]) for m in json.loads(got.stdout)] == [("signals@1", 2)]
    got = run.invoke(app, [*base, "get", "signals:score", "--key", "1", "--key", "7", "--json"])
    assert got.exit_code == 0, got.output
    # Read now: the day-3 value is long past its 2-day TTL.
    assert json.loads(got.stdout) == [{"key": "1", "score": None}, {"key": "7", "score": None}]
    got = run.invoke(app, [*base, "get", "signals:scor", "--key", "1"])
    assert got.exit_code == 2 and "no feature `scor` in feature view `signals@1`; did you mean `score`?" in got.stderr
    got = run.invoke(app, [*base, "materialize", "--until", "soon"])
    assert got.exit_code == 2 and "--until `soon` is not an ISO time" in got.stderr

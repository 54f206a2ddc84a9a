"""The online store and materialization, each behaviour on both stores (embedded SQLite, and Redis on loopback):
latest values by entity key, TTL at read time, incremental runs from the recorded end of the last one, keys of
several columns; Redis refused clearly without its package or its server, PII grants on every path, and the
CLI's materialize and get."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from catalog.metadata import Column, PiiTag, Table
from catalog.store import CatalogStore
from catalog.warehouse import connect_writer
from cli.main import app
from core.errors import UserError
from core.principal import Principal
from core.workspace import Workspace
from runtimes.features.materialize import materialize, watermark
from runtimes.features.offline_store import training_set
from runtimes.features.online_features import OnlineReader, get_online_features
from runtimes.features.online_store import RedisOnlineStore, open_online_store
from runtimes.features.registry import apply, get_version
from tests.features_workspace import at, make_signals, signals_view, write_view
from tests.ui_server import free_port
from tests.waiting import wait_for

UTC = dt.timezone.utc


def ts(d) -> float:
    return d.replace(tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A redis-server on a free loopback port, without persistence, for this file's tests."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    redis = pytest.importorskip("redis")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path_factory.mktemp("redis"))], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)

    def up() -> bool:
        assert proc.poll() is None, f"redis-server exited with {proc.returncode}"
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_for(up, stall_s=30, what="redis-server to answer")
    yield f"redis://127.0.0.1:{port}/0", client
    proc.terminate()
    proc.wait(timeout=30)


def use_store(ws: Workspace, url: str) -> Workspace:
    """The workspace anew, its lathe.toml's `[features] online_store` set to `url`."""
    text = ws.settings_path.read_text(encoding="utf-8").split("\n[features]\n")[0]
    ws.settings_path.write_text(f'{text}\n[features]\nonline_store = "{url}"\n', encoding="utf-8")
    return Workspace(ws.root)


@pytest.fixture(params=["sqlite", "redis"])
def store_ws(request, workspace):
    """The test's workspace with its online store set to the parameter's kind (Redis emptied first)."""
    if request.param == "sqlite":
        return workspace
    url, client = request.getfixturevalue("redis_server")
    client.flushdb()
    ws = use_store(workspace, url)
    assert isinstance(open_online_store(ws), RedisOnlineStore)
    return ws


def with_signals(ws: Workspace) -> Workspace:
    make_signals(ws, [(1, at(1), 10.0), (1, at(3), 30.0), (2, at(2), 70.0), (3, at(9), 90.0)])
    signals_view(ws, ttl="2d")
    apply(ws)
    return ws


@pytest.fixture
def ws(store_ws):
    return with_signals(store_ws)


@pytest.fixture
def sqlite_ws(workspace):
    return with_signals(workspace)


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
    store = open_online_store(ws)
    store.write("t", ["x"], [("k", 200.0, "new"), ("j", 5.0, 1.5)])
    store.write("t", ["x"], [("k", 100.0, "old"), ("j", 5.0, None)])  # an equal time replaces
    assert store.read("t", ["x"], ["k", "j", "nobody"]) == {"k": (200.0, ["new"]), "j": (5.0, [None])}
    assert store.has("t") and not store.has("u")
    store.drop("t")
    assert not store.has("t") and store.read("t", ["x"], ["k"]) == {}


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


def test_workspaces_of_one_name_keep_their_values_apart_in_one_redis(redis_server, tmp_path):
    url, _ = redis_server
    spaces = []
    for n, score in ((1, 10.0), (2, 20.0)):
        ws = Workspace(tmp_path / str(n) / "shop")
        ws.create()
        assert ws.settings.name == "shop"
        make_signals(ws, [(1, at(1), score)])
        signals_view(ws)
        apply(ws)
        spaces.append(use_store(ws, url))
    for ws in spaces:
        materialize(ws, until=at(5).replace(tzinfo=UTC))
    assert [get_online_features(ws, ["signals:score"], [1]) for ws in spaces] == [[{"score": 10.0}], [{"score": 20.0}]]


TRIPS_VIEW = """
feature_views:
  - name: trips
    owner: ops
    entity: {name: trip, join_key: [driver_id, customer_id]}
    source: {table: trips}
    event_time: ended_at
    ttl: 5d
    features:
      - {name: fare, type: float64, description: the last fare this driver charged this customer}
"""


def test_a_key_of_several_columns_joins_and_reads_on_all_of_them(ws):
    with connect_writer(ws) as con:
        con.execute("CREATE TABLE trips (driver_id INTEGER, customer_id INTEGER, ended_at TIMESTAMP, fare DOUBLE)")
        con.executemany("INSERT INTO trips VALUES (?, ?, ?, ?)", [
            [1, 1, at(1), 10.0], [1, 2, at(2), 20.0], [2, 1, at(3), 30.0], [1, 1, at(6), 60.0]])
    write_view(ws, TRIPS_VIEW, name="trips.yml")
    apply(ws)
    labels = pd.DataFrame({"driver_id": [1, 1, 2, 2, 1], "customer_id": [1, 2, 1, 2, 1],
                           "event_timestamp": [at(5), at(5), at(5), at(5), at(7)]})
    # Day 6's fare is after the day-5 labels; the other driver's or customer's fares never match.
    assert list(training_set(ws, labels, ["trips"])["fare"].fillna(-1)) == [10.0, 20.0, 30.0, -1, 60.0]
    materialize(ws, until=at(5).replace(tzinfo=UTC))
    reader = OnlineReader(ws, ["trips"])
    assert reader.get([(1, 1), (2, 2), (1, 2), ("2", "1")], now=ts(at(5))) == [
        {"fare": 10.0}, {"fare": None}, {"fare": 20.0}, {"fare": 30.0}]
    assert reader.get([(1, 1)], now=ts(at(6, seconds=1))) == [{"fare": None}]  # 5 days and a second: past the TTL
    # Views keyed by different columns, read at once: each takes its own key columns from the mapping.
    both = OnlineReader(ws, ["signals:score", "trips:fare"])
    assert both.get([{"customer_id": 1, "driver_id": 2}, {"customer_id": 2, "driver_id": 1}], now=ts(at(3))) == [
        {"score": 30.0, "fare": 30.0}, {"score": 70.0, "fare": 20.0}]
    with pytest.raises(UserError, match=r"feature view `trips@1` is keyed by driver_id, customer_id: give each key as "
                                        r"a tuple of their values or a mapping"):
        reader.get([1])
    with pytest.raises(UserError, match=r"feature view `trips@1` is keyed by driver_id, customer_id: the key "
                                        r"\{'customer_id': 1\} lacks driver_id"):
        both.get([{"customer_id": 1}])
    (run,) = materialize(ws, ["trips"], until=at(10).replace(tzinfo=UTC))
    assert (run.start, run.rows) == (at(5).isoformat(), 1)
    got = CliRunner().invoke(app, ["--workspace", str(ws.root), "features", "get", "trips:fare", "--key",
                                   "driver_id=1,customer_id=1", "--key", "driver_id=2,customer_id=1", "--json"])
    assert got.exit_code == 0, got.output
    # Read now: long past the 5-day TTL, so the values are empty.
    assert json.loads(got.stdout) == [{"key": "driver_id=1,customer_id=1", "fare": None},
                                      {"key": "driver_id=2,customer_id=1", "fare": None}]
    assert reader.get([(1, 1)], now=ts(at(7))) == [{"fare": 60.0}]


def test_redis_configured_without_its_package_or_its_server_is_refused_clearly(sqlite_ws, monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(UserError, match=r"set to Redis \(redis://localhost:6379/0\) but the `redis` package is not "
                                        r"installed: `pip install redis`"):
        materialize(use_store(sqlite_ws, "redis://localhost:6379/0"), until=at(5).replace(tzinfo=UTC))
    monkeypatch.undo()
    pytest.importorskip("redis")
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(UserError, match=rf"the Redis online store \({nobody}\) failed while checking a table: .*check "
                                        "that it is running"):
        materialize(use_store(sqlite_ws, nobody), until=at(5).replace(tzinfo=UTC))


def test_an_unknown_online_store_setting_is_refused(sqlite_ws):
    with pytest.raises(UserError, match="is not a store: write \"sqlite\""):
        get_online_features(use_store(sqlite_ws, "memcached://x"), ["signals"], [1])


# ---- PII ---------------------------------------------------------------------------------------------------


@pytest.fixture
def pii_ws(sqlite_ws):
    ws = sqlite_ws
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

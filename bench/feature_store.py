"""Benchmark of Lathe's feature store against Feast's local provider (file offline store, SQLite online store) on
the same data: a point-in-time join of label rows × 20 features (4 views of 5, each with a TTL) — the time of each
and whether every value agrees — and online reads by entity key, p50/p99 for single keys and batches of 100
(SQLite; with --redis also the Redis online store, on a redis-server it starts on loopback).
Also times DuckDB against SQLite for the same point reads (why the embedded online store is SQLite).

Feast runs as a subprocess in its own virtual environment (`--feast-python`); without it, the point-in-time join
is checked against pandas `merge_asof` instead. Writes its data under a temporary folder it removes.

    .venv/bin/python bench/feature_store.py [--labels 1000000] [--entities 20000] [--rows 250000]
                                            [--feast-python /tmp/feast-venv/bin/python] [--redis]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

VIEWS = 4
PER_VIEW = 5
TTL_DAYS = 30
T0 = pd.Timestamp("2025-01-01")
SPAN_S = 365 * 86400

FEAST_SCRIPT = textwrap.dedent('''
    import json, sys, time, datetime as dt
    import numpy as np, pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64
    repo, views, per_view, ttl_days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    open(f"{repo}/feature_store.yaml", "w").write(
        "project: bench\\nregistry: data/registry.db\\nprovider: local\\n"
        "online_store: {type: sqlite, path: data/online.db}\\noffline_store: {type: file}\\n"
        "entity_key_serialization_version: 3\\n")
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    fvs = [FeatureView(name=f"v{v}", entities=[customer], ttl=dt.timedelta(days=ttl_days),
                       schema=[Field(name=f"v{v}_f{i}", dtype=Float64) for i in range(per_view)],
                       source=FileSource(path=f"{repo}/v{v}.parquet", timestamp_field="event_timestamp"))
           for v in range(views)]
    store = FeatureStore(repo_path=repo)
    store.apply([customer, *fvs])
    refs = [f"v{v}:v{v}_f{i}" for v in range(views) for i in range(per_view)]
    labels = pd.read_parquet(f"{repo}/labels.parquet")
    labels["event_timestamp"] = labels["event_timestamp"].dt.tz_localize("UTC")
    t = time.perf_counter()
    got = store.get_historical_features(entity_df=labels, features=refs).to_df()
    pit_s = time.perf_counter() - t
    got.to_parquet(f"{repo}/feast_out.parquet")
    end = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    t = time.perf_counter()
    store.materialize(start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), end_date=end)
    mat_s = time.perf_counter() - t
    keys = np.random.default_rng(3).integers(1, int(sys.argv[5]) + 1, 2000)
    single, batched = [], []
    for k in keys:
        t = time.perf_counter(); store.get_online_features(refs, [{"customer_id": int(k)}]).to_dict()
        single.append(time.perf_counter() - t)
    for i in range(0, 2000, 100):
        rows = [{"customer_id": int(k)} for k in keys[i:i + 100]]
        t = time.perf_counter(); store.get_online_features(refs, rows).to_dict(); batched.append(time.perf_counter() - t)
    print(json.dumps({"pit_s": pit_s, "materialize_s": mat_s, "single": single, "batched": batched}))
''')


def make_data(n_labels: int, n_entities: int, n_rows: int, seed: int = 1) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    rng = np.random.default_rng(seed)
    views = []
    for v in range(VIEWS):
        # Whole seconds, unique per entity: the latest row at or before a time is then one row, in both systems.
        df = pd.DataFrame({"customer_id": rng.integers(1, n_entities + 1, n_rows),
                           "secs": rng.integers(0, SPAN_S, n_rows)}).drop_duplicates(["customer_id", "secs"])
        df["event_timestamp"] = T0 + pd.to_timedelta(df.pop("secs"), unit="s")
        for i in range(PER_VIEW):
            df[f"v{v}_f{i}"] = rng.normal(size=len(df)).round(6)
        views.append(df.reset_index(drop=True))
    labels = pd.DataFrame({"row_id": np.arange(n_labels), "customer_id": rng.integers(1, n_entities + 1, n_labels),
                           "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, SPAN_S, n_labels), unit="s")})
    return views, labels


def view_yaml() -> str:
    out = ["feature_views:"]
    for v in range(VIEWS):
        out += [f"  - name: v{v}", "    owner: bench", "    entity: {name: customer, join_key: customer_id}",
                f"    source: {{table: v{v}}}", "    event_time: event_timestamp", f"    ttl: {TTL_DAYS}d",
                "    features:"]
        out += [f"      - {{name: v{v}_f{i}, type: float64, description: noise {i}}}" for i in range(PER_VIEW)]
    return "\n".join(out) + "\n"


def feature_cols() -> list[str]:
    return [f"v{v}_f{i}" for v in range(VIEWS) for i in range(PER_VIEW)]


def reference(views: list[pd.DataFrame], labels: pd.DataFrame) -> pd.DataFrame:
    """pandas merge_asof, view by view, with the TTL applied after: the same rule, written independently."""
    out = labels.sort_values("event_timestamp")
    for v, df in enumerate(views):
        right = df.rename(columns={"event_timestamp": "_ts"}).sort_values("_ts")
        out = pd.merge_asof(out, right, left_on="event_timestamp", right_on="_ts", by="customer_id",
                            direction="backward", allow_exact_matches=True)
        stale = out["_ts"].isna() | (out["_ts"] < out["event_timestamp"] - pd.Timedelta(days=TTL_DAYS))
        out.loc[stale, [f"v{v}_f{i}" for i in range(PER_VIEW)]] = np.nan
        out = out.drop(columns="_ts")
    return out.sort_values("row_id").reset_index(drop=True)


def agree(a: pd.DataFrame, b: pd.DataFrame) -> tuple[int, int, int]:
    """(values that differ, values compared, label rows of `a` missing from `b`) over the 20 feature columns, on
    the label rows both hold (aligned on row_id)."""
    both = a.merge(b, on="row_id", suffixes=("", "_b"))
    x = both[feature_cols()].to_numpy(float)
    y = both[[f"{c}_b" for c in feature_cols()]].to_numpy(float)
    same = (np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=0, atol=1e-9)
    return int((~same).sum()), same.size, len(a) - len(both)


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples) * 1000, q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", type=int, default=1_000_000)
    ap.add_argument("--entities", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=250_000, help="rows per feature view's source")
    ap.add_argument("--feast-python", default="/tmp/feast-venv/bin/python", help="empty: skip Feast")
    ap.add_argument("--redis", action="store_true", help="also read from the Redis online store (starts a "
                    "redis-server on loopback; needs it and the `redis` package)")
    args = ap.parse_args()

    from catalog.warehouse import connect_writer
    from core.workspace import Workspace
    from runtimes.features.materialize import materialize
    from runtimes.features.offline_store import training_set
    from runtimes.features.online_features import OnlineReader
    from runtimes.features.registry import apply

    views, labels = make_data(args.labels, args.entities, args.rows)
    print(f"data: {len(labels):,} label rows, {args.entities:,} entities, {VIEWS} views × {PER_VIEW} features, "
          f"{sum(len(v) for v in views):,} feature rows, TTL {TTL_DAYS} days; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "feast"
        (repo / "data").mkdir(parents=True)
        for v, df in enumerate(views):
            df.to_parquet(repo / f"v{v}.parquet")
        labels.to_parquet(repo / "labels.parquet")

        ws = Workspace(Path(tmp) / "ws")
        ws.create()
        with connect_writer(ws) as con:
            for v, df in enumerate(views):
                con.register("df", df)
                con.execute(f"CREATE TABLE v{v} AS SELECT * FROM df")
                con.unregister("df")
        (ws.catalog_dir / "features").mkdir(parents=True, exist_ok=True)
        (ws.catalog_dir / "features" / "bench.yml").write_text(view_yaml(), encoding="utf-8")
        apply(ws)
        refs = [f"v{v}" for v in range(VIEWS)]

        t = time.perf_counter()
        lathe = training_set(ws, labels, refs)
        lathe_s = time.perf_counter() - t
        print(f"point-in-time join, Lathe (DuckDB ASOF):  {lathe_s:8.2f} s")

        t = time.perf_counter()
        ref = reference(views, labels)
        ref_s = time.perf_counter() - t
        diff, n, missing = agree(lathe, ref)
        print(f"point-in-time join, pandas merge_asof:    {ref_s:8.2f} s   values differing from Lathe: {diff:,} of "
              f"{n:,}; label rows missing: {missing:,}")

        feast = None
        if args.feast_python and Path(args.feast_python).is_file():
            (repo / "run.py").write_text(FEAST_SCRIPT, encoding="utf-8")
            proc = subprocess.run([args.feast_python, str(repo / "run.py"), str(repo), str(VIEWS), str(PER_VIEW),
                                   str(TTL_DAYS), str(args.entities)], capture_output=True, text=True, cwd=repo)
            if proc.returncode != 0:
                print("Feast failed:\n" + proc.stderr[-3000:])
            else:
                feast = json.loads(proc.stdout.strip().splitlines()[-1])
                got = pd.read_parquet(repo / "feast_out.parquet")
                diff, n, missing = agree(lathe, got)
                print(f"point-in-time join, Feast local (file):   {feast['pit_s']:8.2f} s   values differing from "
                      f"Lathe: {diff:,} of {n:,}; label rows missing from Feast's result: {missing:,}")
                print(f"  Lathe is {feast['pit_s'] / lathe_s:.1f}x faster than Feast's local path")
        else:
            print(f"Feast not found at {args.feast_python}: compared with pandas only")

        t = time.perf_counter()
        materialize(ws, until=pd.Timestamp("2026-01-02", tz="UTC").to_pydatetime())
        print(f"materialize, Lathe: {time.perf_counter() - t:.2f} s"
              + (f";  Feast: {feast['materialize_s']:.2f} s" if feast else ""))
        features = [f"v{v}" for v in range(VIEWS)]
        keys = np.random.default_rng(3).integers(1, args.entities + 1, 2000)
        single, batched = online_reads(OnlineReader(ws, features), keys)
        print("online reads, 20 features (ms)        single p50   single p99   batch-100 p50   batch-100 p99")
        print(f"  Lathe (SQLite, in-process)           {pct(single, 50):10.3f}   {pct(single, 99):10.3f}   "
              f"{pct(batched, 50):13.3f}   {pct(batched, 99):13.3f}")
        if args.redis:
            with redis_server(Path(tmp)) as url:
                settings = ws.settings_path.read_text(encoding="utf-8")
                ws.settings_path.write_text(settings + f'\n[features]\nonline_store = "{url}"\n', encoding="utf-8")
                on_redis = Workspace(ws.root)
                t = time.perf_counter()
                materialize(on_redis, until=pd.Timestamp("2026-01-02", tz="UTC").to_pydatetime(), full=True)
                print(f"  (materialize into Redis: {time.perf_counter() - t:.2f} s)")
                single, batched = online_reads(OnlineReader(on_redis, features), keys)
                print(f"  Lathe (Redis on loopback)            {pct(single, 50):10.3f}   {pct(single, 99):10.3f}   "
                      f"{pct(batched, 50):13.3f}   {pct(batched, 99):13.3f}")
        if feast:
            print(f"  Feast (SQLite, in-process)           {pct(feast['single'], 50):10.3f}   "
                  f"{pct(feast['single'], 99):10.3f}   {pct(feast['batched'], 50):13.3f}   "
                  f"{pct(feast['batched'], 99):13.3f}")
        point_reads(ws, keys)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def online_reads(reader, keys) -> tuple[list[float], list[float]]:
    """Seconds per read: each key alone, then batches of 100."""
    now = pd.Timestamp("2026-01-01", tz="UTC").timestamp()
    single, batched = [], []
    for k in keys:
        t = time.perf_counter()
        reader.get([int(k)], now=now)
        single.append(time.perf_counter() - t)
    for i in range(0, len(keys), 100):
        t = time.perf_counter()
        reader.get([int(k) for k in keys[i:i + 100]], now=now)
        batched.append(time.perf_counter() - t)
    return single, batched


@contextlib.contextmanager
def redis_server(tmp: Path):
    """A redis-server on a free loopback port without persistence, for the Redis online store's reads."""
    import socket

    import redis

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def point_reads(ws, keys) -> None:
    """The same latest rows in SQLite and in DuckDB (primary key on each), one key per read: why SQLite."""
    import sqlite3

    import duckdb

    src = sqlite3.connect(ws.root / "features" / "online.sqlite")
    rows = src.execute('SELECT * FROM "v0__v1"').fetchall()
    cols = [d[1] for d in src.execute('PRAGMA table_info("v0__v1")').fetchall()]
    results = {}
    db = duckdb.connect()
    db.execute(f"CREATE TABLE t ({', '.join(f'{c} {t}' for c, t in zip(cols, ['VARCHAR PRIMARY KEY', 'DOUBLE'] + ['DOUBLE'] * (len(cols) - 2)))})")
    db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(cols))})", rows)
    for name, run in (("SQLite", lambda k: src.execute('SELECT * FROM "v0__v1" WHERE _key = ?', (k,)).fetchall()),
                      ("DuckDB", lambda k: db.execute("SELECT * FROM t WHERE _key = ?", [k]).fetchall())):
        times = []
        for k in keys[:1000]:
            t = time.perf_counter()
            run(str(int(k)))
            times.append(time.perf_counter() - t)
        results[name] = times
    print("point read, one view, one key (ms)    p50        p99")
    for name, times in results.items():
        print(f"  {name:<8}                            {pct(times, 50):7.3f}   {pct(times, 99):8.3f}")


if __name__ == "__main__":
    main()

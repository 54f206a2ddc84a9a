"""Traffic capture: spooling from many processes, idempotent all-or-nothing ingest into the warehouse, feedback."""
from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3

import duckdb
import pytest

from core.errors import UserError
from catalog.store import CatalogStore
from catalog.warehouse import connect_reader
from runtimes.monitoring.traffic import (TrafficRecord, ingest, record, record_feedback, spool_path, spooled)

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)


def make(i: int, **over) -> TrafficRecord:
    data = dict(request_id=f"req-{i}", endpoint="tickets", model="tiny-qwen3-sft@2", ts=T0 + dt.timedelta(minutes=i),
                route="chat", prompt=f"user: my order {i} has not arrived, where is it?",
                response="assistant: I am sorry, it ships tomorrow.", prompt_tokens=12, completion_tokens=8,
                latency_ms=40.0 + i, group="gold" if i % 2 else "basic", metadata={"temperature": 0})
    data.update(over)
    return TrafficRecord(**data)


def rows(ws, sql: str) -> list[tuple]:
    with connect_reader(ws) as con:
        return con.execute(sql).fetchall()


def test_record_then_ingest_moves_rows_once(workspace):
    record(workspace, [make(i) for i in range(5)])
    record(workspace, [make(3), make(4), make(5)])  # 3 and 4 again: ignored
    assert spooled(workspace) == (6, 0)
    assert ingest(workspace) == 6
    assert spooled(workspace) == (0, 0)
    got = rows(workspace, 'SELECT request_id, ts, "group", metadata, status FROM endpoint_traffic ORDER BY ts')
    assert [r[0] for r in got] == [f"req-{i}" for i in range(6)]
    assert got[0][1] == dt.datetime(2026, 11, 2, 9, 0)  # stored as UTC
    assert got[1][2] == "gold" and got[0][3] == '{"temperature": 0}' and got[0][4] == 200
    # The same request served again later (a retry) is not captured twice.
    record(workspace, [make(2), make(6)])
    assert ingest(workspace) == 1
    assert rows(workspace, "SELECT count(*) FROM endpoint_traffic")[0][0] == 7
    assert ingest(workspace) == 0


def test_ingest_catalogues_the_tables(workspace):
    record(workspace, [make(1)])
    ingest(workspace)
    table = CatalogStore(workspace).load().table("endpoint_traffic")
    assert table is not None and table.owner == "lathe" and table.row_count == 1 and table.description
    assert all(c.description for c in table.columns)
    assert {c.name for c in table.pii_columns} == {"prompt", "response"}
    assert not any(c.sample_values for c in table.columns)
    assert CatalogStore(workspace).load().table("endpoint_feedback") is not None


def test_times_are_utc_and_errors_are_captured(workspace):
    paris = dt.timezone(dt.timedelta(hours=1))
    record(workspace, [make(1, ts=dt.datetime(2026, 11, 2, 10, 30, tzinfo=paris)),
                       make(2, status=422, response="`messages` is missing", completion_tokens=0)])
    ingest(workspace)
    got = rows(workspace, "SELECT request_id, ts, status, response FROM endpoint_traffic ORDER BY request_id")
    assert got[0][1] == dt.datetime(2026, 11, 2, 9, 30)
    assert got[1][2:] == (422, "`messages` is missing")


def test_bad_records_are_refused_whole(workspace):
    with pytest.raises(UserError, match="traffic record 1.*latency_ms"):
        record(workspace, [make(1).model_dump(), {**make(2).model_dump(), "latency_ms": -1}])
    with pytest.raises(UserError, match="route"):
        record(workspace, [{**make(3).model_dump(), "route": "stream"}])
    assert spooled(workspace) == (0, 0)


def test_failed_ingest_changes_nothing_and_keeps_the_spool(workspace):
    record(workspace, [make(i) for i in range(3)])
    # Someone made a table of that name with other columns: the insert fails inside the transaction.
    with duckdb.connect(str(workspace.warehouse_path)) as con:
        con.execute("CREATE TABLE endpoint_traffic (request_id VARCHAR, other INTEGER)")
    with pytest.raises(Exception):
        ingest(workspace)
    assert spooled(workspace) == (3, 0)
    assert CatalogStore(workspace).load().table("endpoint_traffic") is None
    assert rows(workspace, "SELECT count(*) FROM endpoint_traffic")[0][0] == 0


def test_feedback_is_spooled_and_ingested(workspace):
    record(workspace, [make(1), make(2)])
    record_feedback(workspace, "req-1", correct=True, score=0.9)
    record_feedback(workspace, "req-2", label="refund", correct=False, group="gold")
    with pytest.raises(UserError, match="empty"):
        record_feedback(workspace, "req-2")
    assert ingest(workspace) == 2
    got = rows(workspace, 'SELECT request_id, label, score, correct, "group" FROM endpoint_feedback ORDER BY request_id')
    assert got == [("req-1", None, 0.9, True, None), ("req-2", "refund", None, False, "gold")]


def _writer(root: str, start: int) -> None:
    from core.workspace import Workspace

    ws = Workspace(__import__("pathlib").Path(root))
    for k in range(10):
        record(ws, [make(start + k * 10 + j) for j in range(10)])


def test_many_processes_record_at_once(workspace):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(workspace.root), p * 100)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert spooled(workspace) == (400, 0)
    with sqlite3.connect(spool_path(workspace)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ingest(workspace) == 400

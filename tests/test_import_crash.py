"""`lathe catalog import` killed with SIGKILL at every point of its commit, and at random moments of a slow
import: the next start finds the workspace consistent (every warehouse table catalogued with its columns and row
count, every catalogued table in the warehouse, no staged change left) and the import whole or not at all."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from catalog.importers import import_paths
from catalog.store import CatalogStore, CatalogTransaction
from catalog.warehouse import connect_reader
from catalog.warehouse_change import KILL_AT_ENV
from tests.conftest import ROOT
from tests.waiting import communicate, run

pytestmark = pytest.mark.slow

OLD_ORDERS = "order_id,amount\n1,10\n2,20\n"
NEW_ORDERS = "order_id,amount,currency\n1,10,EUR\n2,20,EUR\n3,30,USD\n"


def _warehouse(ws) -> dict[str, tuple[list[str], int]]:
    """Each table of the warehouse's `main` schema: its columns and its row count."""
    with connect_reader(ws) as con:
        cols: dict[str, list[str]] = {}
        for t, c in con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' "
                                "AND database_name = current_database() ORDER BY table_name, column_index").fetchall():
            cols.setdefault(t, []).append(c)
        return {t: (c, con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t, c in cols.items()}


def _assert_consistent(ws) -> dict[str, tuple[list[str], int]]:
    catalog = CatalogStore(ws).load()  # what a start does first: settle what a dead process left
    warehouse = _warehouse(ws)
    assert set(catalog.tables) == set(warehouse), (sorted(catalog.tables), sorted(warehouse))
    for name, (columns, rows) in warehouse.items():
        entry = catalog.tables[name]
        assert [c.name for c in entry.columns] == columns, name
        assert entry.row_count == rows, name
    assert not list(ws.catalog_dir.glob(".staging-*"))
    return warehouse


def _import_cmd(ws, *paths) -> list[str]:
    return [sys.executable, "-m", "cli.main", "--workspace", str(ws.root), "catalog", "import", "--replace",
            *map(str, paths)]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture
def seeded(workspace, tmp_path):
    old = tmp_path / "old" / "orders.csv"
    old.parent.mkdir()
    old.write_text(OLD_ORDERS, encoding="utf-8")
    import_paths(workspace, [old])
    new = tmp_path / "new"
    new.mkdir()
    (new / "orders.csv").write_text(NEW_ORDERS, encoding="utf-8")
    (new / "customers.csv").write_text("customer_id,name\n1,Ann\n2,Bo\n", encoding="utf-8")
    return workspace, new


@pytest.mark.parametrize(("point", "applied"), [
    ("loaded", False),     # data loaded in the open DuckDB transaction, nothing staged
    ("staged", False),     # catalog change staged, warehouse not committed
    ("recorded", False),   # the change's id written in the warehouse transaction, not committed
    ("committed", True),   # the warehouse committed, the catalog change not applied
])
def test_a_kill_at_each_point_of_the_commit_leaves_the_import_whole_or_absent(seeded, point, applied):
    ws, new = seeded
    out = run(_import_cmd(ws, new / "orders.csv", new / "customers.csv"), capture_output=True, text=True,
              env=_env(**{KILL_AT_ENV: point}))
    assert out.returncode == -signal.SIGKILL, out.stderr
    tables = _assert_consistent(ws)
    if applied:
        assert tables == {"orders": (["order_id", "amount", "currency"], 3), "customers": (["customer_id", "name"], 2)}
    else:
        assert tables == {"orders": (["order_id", "amount"], 2)}

    again = run(_import_cmd(ws, new / "orders.csv", new / "customers.csv"), capture_output=True, text=True, env=_env())
    assert again.returncode == 0, again.stderr
    assert _assert_consistent(ws)["orders"] == (["order_id", "amount", "currency"], 3)


def test_kills_at_random_moments_of_a_slow_import_never_leave_the_workspace_inconsistent(seeded, tmp_path):
    ws, new = seeded
    big = tmp_path / "big" / "events.csv"
    big.parent.mkdir()
    with open(big, "w", encoding="utf-8") as f:
        f.write("event_id,kind,amount,note\n")
        for i in range(600_000):
            f.write(f"{i},k{i % 7},{i * 0.5},note number {i}\n")
    for delay in (0.5, 1.5, 2.5, 3.5, 5.0):
        proc = subprocess.Popen(_import_cmd(ws, big, new / "orders.csv"), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        communicate(proc)
        tables = _assert_consistent(ws)
        if "events" in tables:
            assert tables["events"] == (["event_id", "kind", "amount", "note"], 600_000)
            assert tables["orders"] == (["order_id", "amount", "currency"], 3)  # both files, or neither
        else:  # not committed yet (once it was, a later killed re-import leaves it as it was)
            assert tables == {"orders": (["order_id", "amount"], 2)}


def test_a_staged_change_whose_process_lives_is_left_to_it(seeded):
    ws, _ = seeded
    store = CatalogStore(ws)
    txn = CatalogTransaction(store)
    txn.put_table(store.load_table("orders").model_copy(update={"description": "in flight"}))
    txn.stage(intent=True)
    try:
        CatalogStore(ws).recover()  # another reader meanwhile: the owner holds the lock, nothing is decided
        assert txn.staging is not None and txn.staging.exists()
    finally:
        txn.abort()
    assert store.load_table("orders").description != "in flight"

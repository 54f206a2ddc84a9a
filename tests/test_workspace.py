"""The workspace: where it resolves, what `create` lays out, settings errors, the sandboxed reader."""
from __future__ import annotations

import sqlite3

import duckdb
import pytest

from core.errors import UserError
from catalog.warehouse import QueryTimeout, connect_reader, connect_writer, fetch_with_timeout
from core.workspace import Workspace, WorkspaceError


def test_resolve_prefers_argument_then_lathe_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LATHE_HOME", str(tmp_path / "home"))
    assert Workspace.resolve().root == tmp_path / "home"
    assert Workspace.resolve(tmp_path / "x").root == tmp_path / "x"
    monkeypatch.delenv("LATHE_HOME")
    monkeypatch.chdir(tmp_path)
    assert Workspace.resolve().root == tmp_path / "workspace"


def test_create_lays_out_the_design(workspace):
    for p in ("lathe.toml", "warehouse.duckdb", "catalog/tables", "catalog/semantic", "state.sqlite", "models", "runs"):
        assert (workspace.root / p).exists(), p
    with sqlite3.connect(workspace.state_path) as db:
        assert db.execute("SELECT version FROM schema_version WHERE component='workspace'").fetchone() == (1,)
    assert workspace.settings.sql.row_limit == 10_000


def test_missing_workspace_says_what_to_do(tmp_path):
    with pytest.raises(WorkspaceError, match="lathe init"):
        Workspace(tmp_path / "nope").require()


def test_bad_settings_name_the_key(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.create()
    ws.settings_path.write_text("[sql]\nrow_limit = 'many'\n")
    with pytest.raises(UserError, match=r"sql\.row_limit"):
        Workspace(ws.root).settings
    ws.settings_path.write_text("[sql\n")
    with pytest.raises(UserError, match="malformed TOML"):
        Workspace(ws.root).settings


def test_reader_is_sandboxed(workspace, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with connect_writer(workspace) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(5)")
    with connect_reader(workspace) as con:
        assert con.execute("SELECT sum(i) FROM t").fetchone() == (10,)
        for stmt in (f"SELECT * FROM read_csv('{secret}')", "CREATE TABLE u AS SELECT 1",
                     "SET enable_external_access = true", f"ATTACH '{tmp_path}/x.db' AS x",
                     "INSTALL httpfs"):
            with pytest.raises(duckdb.Error):
                con.execute(stmt)


def test_timeout_interrupts_a_slow_query(workspace):
    with connect_reader(workspace) as con:
        with pytest.raises(QueryTimeout, match="timeout_s"):
            fetch_with_timeout(con, "SELECT count(*) FROM range(100000000000) a", 0.3)


def test_row_cap_reports_truncation(workspace):
    with connect_reader(workspace) as con:
        cols, rows, cut = fetch_with_timeout(con, "SELECT range AS i FROM range(10)", 5, max_rows=3)
    assert cols == ["i"] and len(rows) == 3 and cut

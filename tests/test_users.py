"""Users and roles in the workspace's state database: Argon2 passwords, sign-in tokens kept as hashes, Slack
links, and the `lathe users` / `lathe init` commands that manage them."""
from __future__ import annotations

import sqlite3

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.errors import UserError
from core.users import UserStore


def lathe(root, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


@pytest.fixture
def store(workspace):
    return UserStore(workspace)


def test_a_user_signs_in_with_their_password_and_acts_with_their_roles(store):
    store.add("ana", ["analyst", "approver"], "correct horse")
    who = store.authenticate("ana", "correct horse")
    assert who is not None and who.name == "ana" and who.roles == {"analyst", "approver"}
    assert not who.is_admin
    assert store.authenticate("ana", "wrong horse!") is None
    assert store.authenticate("nobody", "correct horse") is None
    assert store.authenticate("ANA ", "correct horse") is not None  # names are read as typed, case aside


def test_passwords_and_tokens_are_kept_only_as_hashes(store, workspace):
    store.add("ana", ["viewer"], "s3cret-password")
    token = store.new_token("ana")
    raw = workspace.state_path.read_bytes()
    for wal in workspace.state_path.parent.glob("state.sqlite-wal"):
        raw += wal.read_bytes()
    assert b"s3cret-password" not in raw and token.encode() not in raw
    with sqlite3.connect(workspace.state_path) as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE name = 'ana'").fetchone()
    assert stored.startswith("$argon2id$")


def test_a_generated_password_is_returned_once_and_works(store):
    password = store.add("bo", ["viewer"])
    assert len(password) >= 12
    assert store.authenticate("bo", password).roles == {"viewer"}


def test_disabling_a_user_stops_sign_in_and_revokes_tokens(store):
    store.add("ana", ["analyst"], "correct horse")
    token = store.new_token("ana")
    assert store.principal_for_token(token).name == "ana"
    store.disable("ana")
    assert store.authenticate("ana", "correct horse") is None
    assert store.principal_for_token(token) is None
    with pytest.raises(UserError, match="disabled"):
        store.new_token("ana")
    assert store.principal_for_token("lathe-user-made-up") is None


@pytest.mark.parametrize("roles, message", [
    (["superuser"], "unknown role 'superuser': the roles are viewer, analyst, approver, admin"),
    ([], "at least one role"),
    ([" "], "at least one role"),
])
def test_roles_outside_the_four_are_refused_with_the_list(store, roles, message):
    with pytest.raises(UserError, match=message):
        store.add("ana", roles, "correct horse")
    assert store.list() == []


@pytest.mark.parametrize("name", ["", "Ana Lopez", "-ana", "ana/../x", "a" * 65, "ana;drop"])
def test_bad_user_names_are_refused(store, name):
    with pytest.raises(UserError, match="not valid"):
        store.add(name, ["viewer"], "correct horse")


def test_short_passwords_and_duplicate_users_are_refused(store):
    with pytest.raises(UserError, match="too short"):
        store.add("ana", ["viewer"], "short")
    store.add("ana", ["viewer"], "long enough")
    with pytest.raises(UserError, match="exists already"):
        store.add("ana", ["admin"], "long enough")
    assert store.get("ana").roles == ["viewer"]


def test_set_role_replaces_the_roles(store):
    store.add("ana", ["viewer"], "long enough")
    assert store.set_roles("ana", ["approver", "analyst"]).roles == ["analyst", "approver"]
    with pytest.raises(UserError, match="there is no user `bob`"):
        store.set_roles("bob", ["viewer"])


def test_a_slack_user_maps_to_one_lathe_user(store):
    store.add("ana", ["approver"], "long enough")
    store.add("bo", ["viewer"], "long enough")
    store.link_slack("ana", "U012AB3CD")
    assert store.principal_for_slack("U012AB3CD").name == "ana"
    assert store.principal_for_slack("U999") is None
    with pytest.raises(UserError, match="linked to `ana` already"):
        store.link_slack("bo", "U012AB3CD")


def test_init_makes_one_admin_and_prints_the_password_once(tmp_path):
    out = lathe(tmp_path / "ws", "init")
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if "password (shown once)" in x)
    password = line.rsplit(": ", 1)[1].rstrip(".")
    from core.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    assert UserStore(ws).authenticate("admin", password).is_admin
    again = lathe(tmp_path / "ws", "init", "--force")
    assert again.exit_code == 0 and "password" not in again.output
    assert [u.name for u in UserStore(ws).list()] == ["admin"]


def test_init_takes_the_admin_password_from_a_file_and_refuses_a_short_one(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("abc\n")
    refused = lathe(tmp_path / "ws", "init", "--admin-password-file", str(short))
    assert refused.exit_code == 2 and "too short" in refused.output
    assert not (tmp_path / "ws").exists()
    good = tmp_path / "pw.txt"
    good.write_text("a long admin password\n")
    out = lathe(tmp_path / "ws", "init", "--admin-password-file", str(good))
    assert out.exit_code == 0 and "shown once" not in out.output
    from core.workspace import Workspace

    assert UserStore(Workspace(tmp_path / "ws")).authenticate("admin", "a long admin password") is not None


def test_users_commands(workspace):
    added = lathe(workspace.root, "users", "add", "ana", "--role", "analyst", "--role", "approver")
    assert added.exit_code == 0 and "Password (shown once):" in added.output
    assert lathe(workspace.root, "users", "add", "ana", "--role", "viewer").exit_code == 2
    bad = lathe(workspace.root, "users", "add", "cy", "--role", "boss")
    assert bad.exit_code == 2 and "the roles are viewer, analyst, approver, admin" in bad.output
    assert "now has the roles: viewer" in lathe(workspace.root, "users", "set-role", "ana", "--role", "viewer").output
    token = lathe(workspace.root, "users", "token", "ana").output.rsplit(": ", 1)[1].strip()
    assert UserStore(workspace).principal_for_token(token).name == "ana"
    assert lathe(workspace.root, "users", "link-slack", "ana", "U1").exit_code == 0
    assert lathe(workspace.root, "users", "disable", "ana").exit_code == 0
    import json

    listed = json.loads(lathe(workspace.root, "users", "list", "--json").output)
    assert [(u["name"], u["roles"], u["disabled"], u["slack_user_id"]) for u in listed] == [("ana", ["viewer"], True, "U1")]
    assert UserStore(workspace).principal_for_token(token) is None

"""Endpoint API keys by role: an admin or the user a key belongs to rotates it, anyone else is refused naming who
may; the old key stops working on the running endpoint at once and only the new key's hash is stored. An
endpoint deployed from the CLI belongs to the workspace user at the machine, or else to the workspace."""
from __future__ import annotations

import json

import httpx
import openai
import pytest
from typer.testing import CliRunner

from cli.main import app
from core.errors import UserError
from core.principal import ADMIN, Principal
from core.users import UserStore
from core.workspace import Workspace
from runtimes.models.refs import ServedModel
from runtimes.serving.endpoints import deploy as endpoints
from runtimes.serving.endpoints.api_keys import key_hash, new_key
from runtimes.serving.endpoints.key_rotation import rotate_key, rotation_stamp
from runtimes.serving.endpoints.store import EndpointStore
from tests.serving_http import serve
from tests.waiting import wait_for

ANA = Principal(name="ana", roles={"approver"})
BOB = Principal(name="bob", roles={"analyst"})
CAROL = Principal(name="carol", roles={ADMIN})
TINY = {"ref": "tiny", "id": "tiny", "base": "models/base/tiny", "base_ref": "tiny", "adapter": None, "version": None}


@pytest.fixture
def ws(tmp_path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.create()
    users = UserStore(ws)
    for p in (ANA, BOB, CAROL):
        users.add(p.name, p.roles, "a long password")
    return ws


def _endpoint(ws: Workspace, name: str, owner: str | None) -> str:
    """An endpoint's row as a deploy stores it; answers its API key."""
    key = new_key()
    EndpointStore(ws).create(name=name, models=[TINY], mode="serverless", idle_timeout=60,
                             host="127.0.0.1", fixed_port=None, key_hash=key_hash(key),
                             local_key_hash=key_hash(new_key()), engine={}, capture_rate=0.0, owner=owner)
    return key


def test_the_owner_rotates_their_endpoint_s_key_and_only_its_hash_is_kept(ws):
    old = _endpoint(ws, "support", owner="ana")
    key = rotate_key(ws, "support", ANA)
    stored = EndpointStore(ws).get("support")
    assert key != old and stored.key_hash == key_hash(key) != key_hash(old)
    assert stored.owner == "ana"  # a new key still belongs to the user the endpoint's key belongs to
    assert key.encode() not in ws.state_path.read_bytes()
    (event,) = EndpointStore(ws).events("support", kinds=("key_rotated",))
    assert "by ana" in event.message and key not in event.message


def test_an_admin_rotates_any_key(ws):
    _endpoint(ws, "support", owner="ana")
    _endpoint(ws, "shared", owner=None)
    for name in ("support", "shared"):
        key = rotate_key(ws, name, CAROL)
        assert EndpointStore(ws).get(name).key_hash == key_hash(key)


@pytest.mark.parametrize("owner, who_may", [("ana", "an admin or `ana`, the user it belongs to"),
                                            (None, "an admin (its key belongs to the workspace, not to a user)")])
def test_anyone_else_is_refused_naming_who_may(ws, owner, who_may):
    old = _endpoint(ws, "support", owner=owner)
    for someone in (BOB, ANA) if owner is None else (BOB,):
        with pytest.raises(UserError) as refused:
            rotate_key(ws, "support", someone)
        assert str(refused.value) == (f"`{someone.name}` may not rotate the API key of endpoint `support`: only "
                                      f"{who_may} may")
    assert EndpointStore(ws).get("support").key_hash == key_hash(old)
    assert not EndpointStore(ws).events("support", kinds=("key_rotated",))


def test_an_unknown_endpoint_is_named(ws):
    with pytest.raises(UserError, match="no endpoint `nope`"):
        rotate_key(ws, "nope", CAROL)


def test_a_running_endpoint_refuses_the_old_key_as_soon_as_it_is_rotated(ws, tmp_path):
    from runtimes.serving.endpoints.openai_api import EndpointSettings, create_app
    from runtimes.serving.engines.pool import EnginePool
    from tests.serving_models import tiny_base

    old = _endpoint(ws, "support", owner="ana")
    row = EndpointStore(ws).get("support")
    pool = EnginePool([ServedModel("tiny", str(tiny_base(tmp_path / "base")), "tiny", None)], serverless=True)
    settings = EndpointSettings(name="support", key_hashes=(row.key_hash, row.local_key_hash), workspace=ws,
                                owner="ana", owner_key_hash=row.key_hash,
                                rotation_stamp=rotation_stamp(ws, "support"))
    with serve(create_app(pool, settings)) as base:
        def status(key: str) -> int:
            return httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code

        assert status(old) == 200
        new = rotate_key(ws, "support", ANA)
        assert (status(old), status(new)) == (401, 200)
        newer = rotate_key(ws, "support", CAROL)
        assert (status(new), status(newer)) == (401, 200)
        UserStore(ws).disable("ana")  # the new key is still ana's: disabling her revokes it
        wait_for(lambda: status(newer) == 401, what="the disabled owner's rotated key to be refused")


def _lathe(ws: Workspace, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(ws.root), *args])


def test_the_cli_lists_whom_each_key_belongs_to_and_rotates_as_the_local_admin(ws, monkeypatch):
    _endpoint(ws, "support", owner="ana")
    old = _endpoint(ws, "shared", owner=None)
    monkeypatch.setenv("COLUMNS", "240")  # one line per endpoint in the table
    listed = _lathe(ws, "endpoints", "list")
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[1]: line for line in listed.output.splitlines() if line.split()[1:2] in (["support"],
                                                                                                  ["shared"])}
    assert "ana" in lines["support"] and "workspace (no user)" in lines["shared"]
    listed_json = json.loads(_lathe(ws, "endpoints", "list", "--json").output)
    assert {e["name"]: e["owner"] for e in listed_json} == {"support": "ana", "shared": None}
    shown = _lathe(ws, "endpoints", "show", "shared").output
    assert "workspace (no user)" in shown

    monkeypatch.setenv("LOGNAME", "someone-at-the-machine")  # no workspace user: the anonymous local admin
    rotated = _lathe(ws, "endpoints", "rotate-key", "shared")
    assert rotated.exit_code == 0, rotated.output
    (key,) = [w for w in rotated.output.split() if w.startswith("lathe-")]
    assert EndpointStore(ws).get("shared").key_hash == key_hash(key) != key_hash(old)
    assert "shown once" in rotated.output and "old key no longer works" in rotated.output
    refused = _lathe(ws, "endpoints", "rotate-key", "nope")
    assert refused.exit_code == 2 and "no endpoint `nope`" in refused.output


@pytest.mark.slow
@pytest.mark.parametrize("login, owner", [("ana", "ana"), ("someone-at-the-machine", None)])
def test_an_endpoint_deployed_from_the_cli_belongs_to_the_user_at_the_machine(tmp_path, monkeypatch, login, owner):
    from tests.serving_registry import registered_workspace

    ws = registered_workspace(tmp_path)
    UserStore(ws).add("ana", ["approver"], "a long password")
    monkeypatch.setenv("LOGNAME", login)
    deployed = _lathe(ws, "deploy", "tickets-sft", "--name", "support")
    try:
        assert deployed.exit_code == 0, deployed.output
        (key,) = [w for w in deployed.output.split() if w.startswith("lathe-")]
        assert EndpointStore(ws).get("support").owner == owner
        assert (f"belongs to `{owner}`" if owner else "belongs to the workspace (no user)") in deployed.output
        client = openai.OpenAI(base_url=EndpointStore(ws).get("support").url, api_key=key, max_retries=0)
        assert client.models.list().data
        rotated = _lathe(ws, "endpoints", "rotate-key", "support")
        assert rotated.exit_code == 0, rotated.output
        (new,) = [w for w in rotated.output.split() if w.startswith("lathe-")]
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
        fresh = openai.OpenAI(base_url=EndpointStore(ws).get("support").url, api_key=new, max_retries=0)
        assert fresh.models.list().data
        UserStore(ws).disable("ana")

        def refused() -> bool:
            try:
                fresh.models.list()
                return False
            except openai.AuthenticationError:
                return True

        if owner == "ana":  # her key, rotated or not, is revoked with her
            wait_for(refused, what="the disabled owner's key to be refused")
        else:  # the workspace's key outlives any user
            assert not refused()
    finally:
        endpoints.delete(ws, "support")

"""Rotating an endpoint's API key: allowed to an admin or the user the key belongs to, the new key returned once
and only its hash stored. A running endpoint reads its keys again when the rotation stamp in its folder changes,
so the old key is refused from the next request on."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from core.errors import UserError
from core.principal import Principal, may_manage_key
from core.workspace import Workspace
from runtimes.serving.endpoints.api_keys import key_hash, new_key
from runtimes.serving.endpoints.deploy import endpoint_dir
from runtimes.serving.endpoints.store import EndpointStore


def rotation_stamp(ws: Workspace, name: str) -> Path:
    """Replaced at each rotation: its change tells the endpoint's process to read its keys again."""
    return endpoint_dir(ws, name) / "key.rotated"


def rotate_key(ws: Workspace, name: str, by: Principal) -> str:
    """Give endpoint `name` a new API key, still belonging to its owner; the old key stops working."""
    store = EndpointStore(ws)
    endpoint = store.get(name)
    if not may_manage_key(by, endpoint.owner):
        who = (f"an admin or `{endpoint.owner}`, the user it belongs to" if endpoint.owner else
               "an admin (its key belongs to the workspace, not to a user)")
        raise UserError(f"`{by.name}` may not rotate the API key of endpoint `{name}`: only {who} may")
    key = new_key()
    store.set_key_hash(name, key_hash(key), by.name)
    _stamp(rotation_stamp(ws, name))
    return key


def _stamp(path: Path) -> None:
    # Written aside and moved in: the file's identity changes at every rotation, whatever the clock's resolution.
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    aside.write_text(secrets.token_hex(8), encoding="utf-8")
    os.replace(aside, path)

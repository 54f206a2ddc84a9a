"""The workspace's users and their roles, in `state.sqlite`: passwords hashed with Argon2id, sign-in tokens kept
only as SHA-256 hashes, a Slack user id linked to a user, and the `Principal` each sign-in acts as.

Roles: `viewer` (asks read-only questions), `analyst` (proposes plans, runs reads), `approver` (approves plans and
model versions), `admin` (users, settings, endpoint keys). A user may hold several. Nothing here decides what a
role may do; the session and the graph read the principal's roles.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel

from core.errors import UserError
from core.principal import APPROVER_ROLES, ROLES, Principal
from core.state_db import ensure_schema, transaction
from core.workspace import Workspace

MIN_PASSWORD = 8
TOKEN_PREFIX = "lathe-user-"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HASHER = PasswordHasher()  # Argon2id with the library's current parameters
# Verified against when the user does not exist, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    roles TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    slack_user_id TEXT UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_tokens (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
"""


class User(BaseModel):
    name: str
    roles: list[str]
    disabled: bool = False
    slack_user_id: str | None = None
    created_at: str

    def principal(self) -> Principal:
        return Principal(name=self.name, roles=set(self.roles))


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(f"user name {name!r} is not valid: use 1-64 lowercase letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit (e.g. `ana.lopez`)")
    return name


def check_roles(roles: Iterable[str]) -> list[str]:
    chosen = {r.strip().lower() for r in roles if r.strip()}
    if not chosen:
        raise UserError(f"a user needs at least one role: one or more of {', '.join(ROLES)}")
    unknown = [r for r in chosen if r not in ROLES]
    if unknown:
        raise UserError(f"unknown role {unknown[0]!r}: the roles are {', '.join(ROLES)}")
    return sorted(chosen, key=ROLES.index)


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short ({len(password)} characters): use at least {MIN_PASSWORD}")
    return password


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _token_hash(token: str) -> str:
    # Tokens are 256 random bits: a plain hash is enough (no stretching needed, unlike passwords).
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UserStore:
    def __init__(self, ws: Workspace):
        self.path = ws.state_path
        ensure_schema(self.path, _SCHEMA)

    def add(self, name: str, roles: Iterable[str], password: str | None = None) -> str:
        """Create a user; the password given, or one made at random, is returned to be shown once."""
        name, roles = check_name(name), check_roles(roles)
        password = check_password(password) if password is not None else secrets.token_urlsafe(12)
        with transaction(self.path, immediate=True) as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(f"user `{name}` exists already: change roles with `lathe users set-role {name}`")
            db.execute("INSERT INTO users (name, roles, password_hash, created_at) VALUES (?, ?, ?, ?)",
                       (name, ",".join(roles), _HASHER.hash(password), _now()))
        return password

    def list(self) -> list[User]:
        with transaction(self.path) as db:
            rows = db.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [_user(r) for r in rows]

    def get(self, name: str) -> User:
        with transaction(self.path) as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = ", ".join(u.name for u in self.list()) or "none yet"
            raise UserError(f"there is no user `{name}` (users: {known}); add one with `lathe users add`")
        return _user(row)

    def set_roles(self, name: str, roles: Iterable[str]) -> User:
        roles = check_roles(roles)
        self.get(name)
        with transaction(self.path, immediate=True) as db:
            db.execute("UPDATE users SET roles = ? WHERE name = ?", (",".join(roles), name))
        return self.get(name)

    def set_password(self, name: str, password: str) -> None:
        self.get(name)
        with transaction(self.path, immediate=True) as db:
            db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (_HASHER.hash(check_password(password)),
                                                                            name))

    def disable(self, name: str) -> User:
        """Disable a user: no sign-in, and every sign-in token of theirs revoked."""
        self.get(name)
        with transaction(self.path, immediate=True) as db:
            db.execute("UPDATE users SET disabled = 1 WHERE name = ?", (name,))
            db.execute("UPDATE user_tokens SET revoked = 1 WHERE user_name = ?", (name,))
        return self.get(name)

    def link_slack(self, name: str, slack_user_id: str) -> User:
        self.get(name)
        with transaction(self.path, immediate=True) as db:
            other = db.execute("SELECT name FROM users WHERE slack_user_id = ? AND name != ?",
                               (slack_user_id, name)).fetchone()
            if other:
                raise UserError(f"Slack user {slack_user_id} is linked to `{other['name']}` already")
            db.execute("UPDATE users SET slack_user_id = ? WHERE name = ?", (slack_user_id, name))
        return self.get(name)

    def new_token(self, name: str) -> str:
        """A sign-in token for `name`, returned once; only its hash is kept."""
        if self.get(name).disabled:
            raise UserError(f"user `{name}` is disabled: no token can be made for them")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with transaction(self.path, immediate=True) as db:
            db.execute("INSERT INTO user_tokens (token_hash, user_name, created_at) VALUES (?, ?, ?)",
                       (_token_hash(token), name, _now()))
        return token

    def authenticate(self, name: str, password: str) -> Principal | None:
        """The principal of `name` if the password is theirs and they are enabled; None otherwise (never why)."""
        with transaction(self.path) as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name.strip().lower(),)).fetchone()
        try:
            _HASHER.verify(row["password_hash"] if row else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"]:
            return None
        if _HASHER.check_needs_rehash(row["password_hash"]):
            with transaction(self.path, immediate=True) as db:
                db.execute("UPDATE users SET password_hash = ? WHERE name = ?", (_HASHER.hash(password), row["name"]))
        return _user(row).principal()

    def principal_for_token(self, token: str) -> Principal | None:
        with transaction(self.path) as db:
            row = db.execute("SELECT u.* FROM user_tokens t JOIN users u ON u.name = t.user_name "
                             "WHERE t.token_hash = ? AND t.revoked = 0 AND u.disabled = 0",
                             (_token_hash(token),)).fetchone()
        return _user(row).principal() if row else None  # looked up by hash: the timing says nothing of the token

    def is_disabled(self, name: str) -> bool:
        """Whether `name` is a user of this workspace who has been disabled (an unknown name is not)."""
        with transaction(self.path) as db:
            row = db.execute("SELECT disabled FROM users WHERE name = ?", (name,)).fetchone()
        return bool(row and row["disabled"])

    def is_enabled(self, name: str) -> bool:
        """Whether `name` is a user of this workspace who may sign in (an unknown name is not)."""
        with transaction(self.path) as db:
            row = db.execute("SELECT disabled FROM users WHERE name = ?", (name,)).fetchone()
        return bool(row and not row["disabled"])

    def principal_for_slack(self, slack_user_id: str) -> Principal | None:
        """The linked user's principal, or None for a Slack user no enabled user is linked to."""
        with transaction(self.path) as db:
            row = db.execute("SELECT * FROM users WHERE slack_user_id = ? AND disabled = 0",
                             (slack_user_id,)).fetchone()
        return _user(row).principal() if row else None


def _user(row) -> User:
    return User(name=row["name"], roles=row["roles"].split(","), disabled=bool(row["disabled"]),
                slack_user_id=row["slack_user_id"], created_at=row["created_at"])


def approvers(ws: Workspace) -> list[str]:
    """The enabled users who may approve plans, by name (empty for a workspace with no users yet)."""
    return [u.name for u in UserStore(ws).list() if not u.disabled and APPROVER_ROLES & set(u.roles)]

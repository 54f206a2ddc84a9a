"""Who is asking: a principal's name, roles and grants, and what PII it may see.

Decides visibility of one column from its PII tag and the grants; it never reads the catalog or the
warehouse itself, and never guesses: a column with a PII tag is hidden unless a grant names it.
"""
from __future__ import annotations

import getpass
from collections.abc import Iterable

from pydantic import BaseModel, Field

VIEWER, ANALYST, APPROVER, ADMIN = "viewer", "analyst", "approver", "admin"
ROLES = (VIEWER, ANALYST, APPROVER, ADMIN)  # a user may hold several
# Who may approve a plan or decide on a model version: every such check reads this.
APPROVER_ROLES = frozenset({APPROVER, ADMIN})
# Who may propose a plan that changes anything or spends compute; a viewer (or no role) only reads.
PROPOSER_ROLES = APPROVER_ROLES | {ANALYST}


def may_approve(roles: Iterable[str] | None) -> bool:
    return bool(APPROVER_ROLES & set(roles or ()))


def may_propose(roles: Iterable[str] | None) -> bool:
    return bool(PROPOSER_ROLES & set(roles or ()))


def may_manage_key(principal: Principal, owner: str | None) -> bool:
    """An endpoint's API key is managed by an admin or by the user it belongs to (`owner`; None: the workspace)."""
    return principal.is_admin or (owner is not None and principal.name == owner)


class Principal(BaseModel):
    """A user or agent identity. Grants: `pii` (every PII column), `pii:<tag>` (e.g. `pii:email`),
    `pii:<table>.<column>` (one column)."""
    name: str
    roles: set[str] = Field(default_factory=set)
    grants: set[str] = Field(default_factory=set)

    @classmethod
    def local_admin(cls) -> "Principal":
        """The person at this machine: an admin who sees everything, until workspace roles exist."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry in some containers
            user = "local"
        return cls(name=user, roles={ADMIN})

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    def may_see(self, table: str, column: str, pii_tag: str | None) -> bool:
        """Whether this principal may see the values of `table.column`, tagged `pii_tag` (None: not PII)."""
        if pii_tag is None or self.is_admin:
            return True
        grants = {g.lower() for g in self.grants}
        return bool(grants & {"pii", f"pii:{pii_tag.lower()}", f"pii:{table.lower()}.{column.lower()}"})

"""`lathe users`: add users, list them, set their roles, disable them, make sign-in tokens and link Slack users.

A password or token is printed once and never again; only hashes are kept in the workspace.
"""
from __future__ import annotations

from pathlib import Path

import typer

from cli.context import command, print_json, print_table, workspace

ROLE_HELP = "A role (repeat for several): viewer, analyst, approver or admin."


def register(app: typer.Typer) -> None:
    users = typer.Typer(help="The workspace's users and their roles.", no_args_is_help=True)
    app.add_typer(users, name="users")
    users.command("add")(command(add))
    users.command("list")(command(list_users))
    users.command("set-role")(command(set_role))
    users.command("disable")(command(disable))
    users.command("token")(command(token))
    users.command("link-slack")(command(link_slack))


def read_password_file(path: Path) -> str:
    """The first line of `path`, without its line ending (so `echo pw > file` works)."""
    from core.errors import UserError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read the password file {path}: {e.strerror}") from None
    return text.splitlines()[0] if text else ""


def _store():
    from core.users import UserStore

    return UserStore(workspace())


def add(name: str = typer.Argument(..., help="The user's name (lowercase, e.g. ana.lopez)."),
        role: list[str] = typer.Option(..., "--role", help=ROLE_HELP),
        password_file: Path | None = typer.Option(None, "--password-file", help="Read the password from this file's "
                                                  "first line; without it a password is made and printed once.")) -> None:
    """Add a user with one or more roles."""
    given = read_password_file(password_file) if password_file else None
    password = _store().add(name, role, given)
    typer.echo(f"Added user `{name}` ({', '.join(sorted(set(role)))}).")
    if given is None:
        typer.echo(f"Password (shown once): {password}")


def list_users(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the users, their roles and whether they are disabled."""
    users = _store().list()
    if as_json:
        print_json([u.model_dump() for u in users])
        return
    print_table(["name", "roles", "status", "slack", "created"],
                [[u.name, ", ".join(u.roles), "disabled" if u.disabled else "active", u.slack_user_id, u.created_at]
                 for u in users])


def set_role(name: str = typer.Argument(..., help="The user."),
             role: list[str] = typer.Option(..., "--role", help=ROLE_HELP + " Replaces the user's roles.")) -> None:
    """Replace a user's roles."""
    user = _store().set_roles(name, role)
    typer.echo(f"`{user.name}` now has the roles: {', '.join(user.roles)}.")


def disable(name: str = typer.Argument(..., help="The user.")) -> None:
    """Disable a user: no more sign-in; their tokens and endpoint keys are revoked."""
    _store().disable(name)
    typer.echo(f"Disabled `{name}`; their sign-in tokens and the API keys of endpoints they deployed are revoked.")


def token(name: str = typer.Argument(..., help="The user.")) -> None:
    """Make a sign-in token for a user (printed once)."""
    typer.echo(f"Token for `{name}` (shown once): {_store().new_token(name)}")


def link_slack(name: str = typer.Argument(..., help="The user."),
               slack_user_id: str = typer.Argument(..., help="The Slack member id (e.g. U012AB3CD).")) -> None:
    """Link a Slack user to a Lathe user; unlinked Slack users are treated as viewers."""
    _store().link_slack(name, slack_user_id)
    typer.echo(f"Slack user {slack_user_id} acts as `{name}`.")

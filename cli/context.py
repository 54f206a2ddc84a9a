"""What every command shares: the workspace chosen by `--workspace` / `LATHE_HOME`, and error printing.

Kept free of heavy imports so that `lathe --help` stays fast.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

_state: dict[str, Any] = {"workspace": None}


def set_workspace(path: str | None) -> None:
    _state["workspace"] = path


def workspace(require: bool = True):
    from core.workspace import Workspace

    ws = Workspace.resolve(_state["workspace"])
    return ws.require() if require else ws


def data_source(ws: Any, text: str) -> Any:
    """A `--data` argument: a catalog table's name or one read query, told apart by parsing it."""
    from catalog.data_source import parse_source
    from catalog.store import CatalogStore

    return parse_source(text, CatalogStore(ws).load().tables)


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a user error as one clear line on stderr and exit 2; let real bugs raise."""
    from core.errors import UserError

    try:
        yield
    except UserError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def print_json(data: Any) -> None:
    from catalog.results import json_value

    sys.stdout.write(json.dumps(json_value(data), indent=None, ensure_ascii=False) + "\n")


def print_table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(str(c), overflow="fold")
    for r in rows:
        t.add_row(*[_cell(v) for v in r])
    Console().print(t)


def _cell(v: Any) -> str:
    """A value as a person reads it: floats to 6 decimals, midnight timestamps as dates (JSON keeps all)."""
    import datetime as dt
    import decimal

    from catalog.results import json_value

    if v is None:
        return ""
    if isinstance(v, float | decimal.Decimal):
        return str(round(float(v), 6))
    if isinstance(v, dt.datetime) and v.time() == dt.time(0) and v.tzinfo is None:
        return v.date().isoformat()
    return str(json_value(v))


def print_result(result: Any, as_json: bool) -> None:
    """A `QueryResult` as JSON, or as a table with its warnings, masked columns and truncation on stderr."""
    if as_json:
        print_json(result.to_json())
        return
    print_table(result.columns, result.rows)
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    if result.masked_columns:
        typer.echo(f"masked (PII): {', '.join(result.masked_columns)}", err=True)
    if result.truncated:
        typer.echo(f"showing the first {len(result.rows)} rows; more exist (--limit, or [sql] row_limit)", err=True)


def command(fn: Callable) -> Callable:
    """Wrap a command body so user errors print cleanly."""
    import functools

    @functools.wraps(fn)
    def run(*a: Any, **kw: Any) -> Any:
        with user_errors():
            return fn(*a, **kw)

    return run

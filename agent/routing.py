"""The `route` node: what kind of request a message is. Today: SQL typed directly, or a question.

Decided on sqlglot's parse of the text, never by regexes; it only labels, it never plans.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from agent.state import AgentState

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from agent.resources import AgentResources

Route = Literal["sql", "question"]

_STATEMENTS: tuple[type, ...] = ()


def _statement_types() -> tuple[type, ...]:
    global _STATEMENTS
    if not _STATEMENTS:
        from sqlglot import exp

        # Statements a person types as SQL; reads run, the rest are refused by the SQL guard with a reason.
        _STATEMENTS = (exp.Query, exp.Describe, exp.Summarize, exp.Show, exp.Copy, exp.Pragma, exp.Set, exp.Use,
                       exp.Attach, exp.Detach, exp.Transaction, exp.Commit, exp.Rollback, exp.Install, exp.Export,
                       exp.Drop, exp.Alter, exp.Create, exp.Insert, exp.Update, exp.Delete, exp.Merge)
    return _STATEMENTS


def classify(text: str) -> Route:
    """`sql` when the whole text parses as SQL statements, else `question`."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.ERROR)  # English read as SQL makes sqlglot warn about "unsupported syntax"
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except SqlglotError:
        return "question"
    finally:
        log.setLevel(level)
    kinds = _statement_types()
    return "sql" if trees and all(isinstance(t, kinds) for t in trees) else "question"


def route_node(state: AgentState, runtime: Runtime[AgentResources]) -> dict[str, Any]:
    return {"route": classify(state.request)}

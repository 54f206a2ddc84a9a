"""Lathe's conversational agent: a LangGraph graph that plans, waits for review, executes and answers.

Front-ends use `agent.Session`; everything else here is its machinery. Imported lazily so that
`import agent` stays cheap for command-line help.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Session"]


def __getattr__(name: str) -> Any:
    if name == "Session":
        from agent.session import Session

        return Session
    raise AttributeError(f"module 'agent' has no attribute {name!r}")

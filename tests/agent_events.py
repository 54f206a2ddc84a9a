"""Readers of the agent's event streams for tests: collect a stream, pick events of a kind, the final `done`
event, the streamed text. Holds no tests."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def collect(events: Iterable[Any]) -> list[Any]:
    return list(events)


def of(events: list[Any], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


def done(events: list[Any]) -> Any:
    assert events and events[-1].type == "done", [e.type for e in events]
    return events[-1]


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in of(events, "text_delta"))

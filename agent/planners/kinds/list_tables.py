"""Listing tables: "list tables", "what tables do we have?", "which datasets exist?".
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import TABLE_WORDS
from agent.state import Plan, Step

_AROUND = TABLE_WORDS | {"available", "exist", "catalogued", "catalog", "there"}


def match(question: Question, context: Context) -> Reading | None:
    content = question.content
    if not any(t.low in TABLE_WORDS for t in content) or not all(t.low in _AROUND for t in content):
        return None
    return Reading("list_tables", 0.8, {t.index for t in question.tokens}, describe="a list of the tables")


def plan(reading: Reading, context: Context) -> PlannerReply:
    step = Step(id="s1", tool="list_tables", title="List the catalog's tables")
    return PlannerReply(plan=Plan(steps=[step], summary="Listing the tables in the catalog."))

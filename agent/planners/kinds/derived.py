"""Derived tables: "create a table of EMEA enterprise revenue by month", "save that as a table called x":
the metric query's SQL, from the semantic layer, as a new table (a write, so it waits for approval).
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import _derived


def match(question: Question, context: Context) -> Reading | None:
    intent = _derived(question.text, question.tokens)
    if intent is None:
        return None
    return Reading("derived", 0.9, {t.index for t in question.tokens}, {"intent": intent},
                   describe="a new table from a metric query")


def plan(reading: Reading, context: Context) -> PlannerReply:
    return context.planner.derived_plan(context.request, reading.data["intent"])

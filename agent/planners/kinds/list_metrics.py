"""Listing metrics: "which metrics are defined?", "what KPIs do we have?".
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import METRIC_LIST_WORDS
from agent.state import Plan, Step

_AROUND = METRIC_LIST_WORDS | {"defined", "available", "exist", "known", "there", "track", "tracked"}


def match(question: Question, context: Context) -> Reading | None:
    content = question.content
    if not any(t.low in METRIC_LIST_WORDS for t in content) or not all(t.low in _AROUND for t in content):
        return None
    return Reading("list_metrics", 0.8, {t.index for t in question.tokens}, describe="a list of the metrics")


def plan(reading: Reading, context: Context) -> PlannerReply:
    step = Step(id="s1", tool="list_metrics", title="List the semantic layer's metrics")
    return PlannerReply(plan=Plan(steps=[step], summary="Listing the metrics defined in the semantic layer."))

"""Catalog search: "where is customer email stored?", "find the discount column", "which table has phone
numbers?".
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import SEARCH_FILLER, SEARCH_START, TABLE_WORDS
from agent.state import Plan, Step


def match(question: Question, context: Context) -> Reading | None:
    lows = [t.low for t in question.tokens]
    searching = bool(lows) and lows[0] in SEARCH_START or (
        len(lows) > 1 and lows[0] in ("which", "what") and lows[1] in TABLE_WORDS | {"column", "columns", "field", "fields"})
    if not searching:
        return None
    left = [t for t in question.content if t.low not in SEARCH_FILLER and t.low not in SEARCH_START]
    if not left:
        return None
    used = {t.index for t in question.tokens}
    return Reading("search", 0.55, used, {"text": " ".join(t.text for t in left)},
                   describe=f"a catalog search for `{' '.join(t.text for t in left)}`")


def plan(reading: Reading, context: Context) -> PlannerReply:
    text = reading.data["text"]
    step = Step(id="s1", tool="search_catalog", args={"text": text}, title=f"Search the catalog for `{text}`")
    return PlannerReply(plan=Plan(steps=[step], summary=f"Searching the catalog for `{text}`."))

"""Describing a table: "describe the orders table", "what columns does customers have?", "tell me about
products".
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import DESCRIBE_WORDS, TABLE_WORDS
from agent.planners.kinds.catalog_reads import cue_tokens, mentions, spans
from agent.state import Plan, Step


def match(question: Question, context: Context) -> Reading | None:
    found = mentions(question, context)
    cues = cue_tokens(question, DESCRIBE_WORDS | TABLE_WORDS | {"about"})
    if not found or not cue_tokens(question, DESCRIBE_WORDS | TABLE_WORDS) or len({m.table for m in found}) > 1:
        return None
    table = found[0].table
    return Reading("describe", 0.7, cues | spans(found), {"table": table}, describe=f"a description of table `{table}`")


def plan(reading: Reading, context: Context) -> PlannerReply:
    table = reading.data["table"]
    step = Step(id="s1", tool="describe_table", args={"table": table}, title=f"Describe table `{table}`")
    return PlannerReply(plan=Plan(steps=[step], summary=f"Describing table `{table}` from the catalog."))

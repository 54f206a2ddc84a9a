"""PII: "which columns are PII?", "is there personal data in customers?".
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from catalog.metadata_answers import pii_text
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import PII_WORDS, TABLE_WORDS
from agent.planners.kinds.catalog_reads import cue_tokens, mentions, spans

_AROUND = frozenset({"data", "columns", "column", "fields", "field", "info", "information", "tagged", "contain",
                     "contains", "has", "have", "there", "any"}) | TABLE_WORDS


def match(question: Question, context: Context) -> Reading | None:
    cues = cue_tokens(question, PII_WORDS)
    if not cues:
        return None
    found = mentions(question, context)
    used = cues | cue_tokens(question, _AROUND) | spans(found[:1])
    return Reading("pii", 0.85, used, {"table": found[0].table if found else None}, describe="which columns are PII")


def plan(reading: Reading, context: Context) -> PlannerReply:
    return PlannerReply(text=pii_text(context.catalog, reading.data.get("table")))

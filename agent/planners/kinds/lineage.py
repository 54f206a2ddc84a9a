"""Lineage: "where does emea_monthly.revenue come from?", "what is the lineage of orders.status?", "where do
the values of customers.segment come from?".
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from catalog.metadata_answers import lineage_text
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import _FROM_VERBS, LINEAGE_WORDS, find_column
from agent.planners.kinds.catalog_reads import cue_tokens, mentions

_SOURCE_WORDS = frozenset({"source", "sources", "origin", "originate", "originates"})


def match(question: Question, context: Context) -> Reading | None:
    lows = [t.low for t in question.tokens]
    from_at = {i for i, (a, b) in enumerate(zip(lows, lows[1:])) if a in _FROM_VERBS and b == "from"}
    cues = cue_tokens(question, LINEAGE_WORDS) | from_at | {i + 1 for i in from_at}
    found = mentions(question, context)
    if not cues and not (cue_tokens(question, _SOURCE_WORDS) and found):
        return None
    cues |= cue_tokens(question, _SOURCE_WORDS | {"values", "value", "where"})
    if not found:
        return Reading("lineage", 0.6 if cue_tokens(question, LINEAGE_WORDS) else 0.3, cues,
                       describe="a question about lineage")
    m = found[0]
    col = find_column(question.tokens, context.catalog, m.table, set(range(m.start, m.end)))
    used = cues | set(range(m.start, m.end)) | (col[1] if col else set())
    # "where does X come from" asks for lineage; "which countries do customers come from" does not.
    lows = [t.low for t in question.tokens]
    sure = bool(cue_tokens(question, LINEAGE_WORDS | {"where", "lineage", "provenance"})) or any(
        a == "how" and b not in ("many", "much") for a, b in zip(lows, lows[1:] + [""]))
    return Reading("lineage", 0.9 if sure else 0.35, used, {"table": m.table, "column": col[0] if col else None},
                   describe=f"where `{m.table}`'s data comes from")


def plan(reading: Reading, context: Context) -> PlannerReply:
    return PlannerReply(text=lineage_text(context.catalog, reading.data.get("table"), reading.data.get("column")))

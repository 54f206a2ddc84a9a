"""Definitions: "what does AOV mean?", "what does AOV stand for?", "meaning of TTR", "how is cumulative revenue
calculated?", "define return rate": the glossary's definition and how the metric is computed.
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from catalog.metadata_answers import definition_text
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import DEFINE_WORDS, _definition
from agent.planners.kinds.catalog_reads import cue_tokens
from agent.planners.question_words import stems, without_parentheses

_CUES = DEFINE_WORDS | {"stand", "stands", "abbreviation", "acronym", "short", "explain", "definitions", "glossary",
                        "term", "refer", "refers"}


def match(question: Question, context: Context) -> Reading | None:
    cues = cue_tokens(question, _CUES)
    lows = [t.low for t in question.tokens]
    bare = len(lows) >= 2 and lows[0] in ("what", "whats", "what's") and lows[1] in ("is", "are", "s", "a", "an")
    if not cues and not bare:
        return None
    intent = _definition(question.tokens, context.catalog)
    if intent is None:
        return None
    phrases = []
    if intent.term is not None:
        g = context.catalog.glossary[intent.term]
        phrases = [g.name, *g.synonyms]
    if intent.metric is not None:
        m = context.catalog.semantic.metric(intent.metric)
        phrases += [intent.metric] + ([m.label, without_parentheses(m.label)] if m and m.label else [])
    words = {s for p in phrases for s in stems(p)}
    used = cues | {t.index for t in question.tokens if t.stem in words or t.low in ("for", "for", "of", "by")}
    name = intent.term or intent.metric
    return Reading("definition", 0.85 if cues else 0.5, used, {"term": intent.term, "metric": intent.metric},
                   describe=f"what `{name}` means")


def plan(reading: Reading, context: Context) -> PlannerReply:
    return PlannerReply(text=definition_text(context.catalog, reading.data.get("term"), reading.data.get("metric")))

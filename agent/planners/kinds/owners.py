"""Owners: "who owns orders?", "who should I ask about the support tickets data?", "whos the contact for
order lines", "owners". The verb "owns" alone ("which region owns the most revenue?") is a weak cue.
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from catalog.metadata_answers import owners_text
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import OWNER_WORDS, _glossary_term
from agent.planners.kinds.catalog_reads import cue_tokens, mentions, spans

_ASK_WORDS = frozenset({"ask", "contact", "talk", "reach", "speak", "email", "ping", "responsible", "accountable",
                        "person", "point", "maintains", "maintain", "manages", "manage", "looks",
                        "whos", "whom", "owner", "owners", "ownership", "maintainer", "steward", "stewards", "maintains",
                        "maintained", "owned"})
_DATA_WORDS = frozenset({"data", "dataset", "table", "tables", "about", "for", "regarding", "questions"})


def match(question: Question, context: Context) -> Reading | None:
    lows = {t.low for t in question.tokens}
    asks = cue_tokens(question, _ASK_WORDS)
    owns = cue_tokens(question, OWNER_WORDS)
    who = "who" in lows or "whos" in lows or "whom" in lows
    if not (owns or (asks and who)):
        return None
    strong = bool(asks) or (who and bool(owns))
    found = mentions(question, context)
    used = asks | owns | cue_tokens(question, _DATA_WORDS | {"who", "whos", "whom", "should", "i", "do"})
    if found:
        return Reading("owners", 0.95 if strong else 0.3, used | spans(found[:1]), {"table": found[0].table},
                       describe=f"who owns table `{found[0].table}`")
    term = _glossary_term(question.tokens, context.catalog)
    if term is not None:
        term_used = {t.index for t in question.tokens if t.stem in {s for s in _stems(term, context)}}
        return Reading("owners", 0.95 if strong else 0.25, used | term_used, {"term": term},
                       describe=f"who owns the term `{term}`")
    return Reading("owners", 0.7 if strong else 0.2, used, describe="who owns what")


def _stems(term: str, context: Context) -> set[str]:
    from agent.planners.question_words import stems

    g = context.catalog.glossary[term]
    return {s for p in [g.name, *g.synonyms] for s in stems(p)}


def plan(reading: Reading, context: Context) -> PlannerReply:
    return PlannerReply(text=owners_text(context.catalog, reading.data.get("table"), reading.data.get("term")))

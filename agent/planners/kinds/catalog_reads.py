"""What the catalog kinds share: the tables and glossary terms a question names, and the tokens that name
them, read once per question.
"""
from __future__ import annotations

from agent.planners.intent_registry import Context, Question
from agent.planners.intents import (CREATE_VERBS, DESCRIBE_WORDS, LINEAGE_WORDS, OWNER_WORDS, PII_WORDS, ROW_WORDS,
                                    TABLE_WORDS, _Mention, find_tables)

KEYWORDS = LINEAGE_WORDS | OWNER_WORDS | PII_WORDS | DESCRIBE_WORDS | ROW_WORDS | TABLE_WORDS | CREATE_VERBS


def mentions(question: Question, context: Context) -> list[_Mention]:
    """Tables the question names (by name first, then by synonym), keywords and grammar words left aside."""
    skip = {t.index for t in question.tokens if t.low in KEYWORDS or t.is_filler}
    return find_tables(question.tokens, context.catalog, skip)


def spans(found: list[_Mention]) -> set[int]:
    return {i for m in found for i in range(m.start, m.end)}


def cue_tokens(question: Question, words: frozenset[str] | set[str]) -> set[int]:
    return {t.index for t in question.tokens if t.low in words}

"""An answer to the planner's own question back ("`customers` could mean the metric `customers_with_orders` or
`new_customers`: which one?" - "customers_with_orders"): the earlier question is read again with the answer
in place of the words that were unclear, so its time range, filters and grouping are kept.
"""
from __future__ import annotations

import re

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading, choose

_UNCLEAR = re.compile(r"^`([^`]+)` (?:could mean|could be|is a value of)")
MAX_ANSWER = 5  # content words: a longer message is a new question


def match(question: Question, context: Context) -> Reading | None:
    history = context.request.history
    if len(history) < 2 or len(question.content) > MAX_ANSWER:
        return None
    asked, earlier = history[-1], history[-2]
    m = _UNCLEAR.match(asked.text.strip()) if asked.role == "assistant" and asked.plan is None else None
    if m is None or earlier.role != "user" or m.group(1).lower() not in earlier.text.lower():
        return None
    words = m.group(1)
    at = earlier.text.lower().index(words.lower())
    text = earlier.text[:at] + question.text.strip().rstrip("?.!") + earlier.text[at + len(words):]
    return Reading("clarified", 0.9, {t.index for t in question.tokens}, {"text": text},
                   describe=f"an answer to my question, so: \"{text}\"")


def plan(reading: Reading, context: Context) -> PlannerReply:
    request = context.request.model_copy(update={"text": reading.data["text"], "history": context.request.history[:-2]})
    question = Question.of(reading.data["text"], context.planner.lexicon(context.catalog))
    reply = choose(question, Context(request, context.catalog, context.planner))
    return reply if reply is not None else PlannerReply(text="I still could not read the question.")

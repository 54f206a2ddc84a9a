"""Help: "help", "what can you do?", "hi": what the offline planner understands, with this workspace's
own examples.
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.catalog_answers import help_text
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import HELP_WORDS


def match(question: Question, context: Context) -> Reading | None:
    if all(t.low in HELP_WORDS for t in question.content):
        # Grammar words alone ("how does this work?") ask for help only when nothing else reads them.
        return Reading("help", 0.95 if question.content else 0.6, {t.index for t in question.tokens},
                       describe="a request for help")
    return None


def plan(reading: Reading, context: Context) -> PlannerReply:
    reader, names = context.planner.parts(context.catalog)
    return PlannerReply(text=help_text(context.catalog, names, context.planner.values.of(context.catalog)))

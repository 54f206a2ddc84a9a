"""Guided fine-tuning ("fine-tune a model on the tickets", its follow-up answers, job status), routed to
`agent/planners/finetune_intents.py`. An answer to the flow's open question is decided by its cue alone.
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.finetune_intents import plan_finetune_turn
from agent.planners.intent_registry import Context, Question, Reading

READS_SQL = True  # "use reply_preferences" answers the flow, though it also parses as SQL


def match(question: Question, context: Context) -> Reading | None:
    reply = plan_finetune_turn(context.planner.deps.workspace, context.request)
    return None if reply is None else Reading("finetune", 1.0, exclusive=True, data={"reply": reply})


def plan(reading: Reading, context: Context) -> PlannerReply:
    return reading.data["reply"]

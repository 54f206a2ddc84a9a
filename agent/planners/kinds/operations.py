"""Endpoints, batch and async inference, monitors and alerts, routed to `agent/planners/operations_intents.py`.
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.operations_intents import plan_operations_turn


def match(question: Question, context: Context) -> Reading | None:
    if context.request.route == "sql":
        return None
    reply = plan_operations_turn(context.planner.deps.workspace, context.request)
    return None if reply is None else Reading("operations", 1.0, exclusive=True, data={"reply": reply})


def plan(reading: Reading, context: Context) -> PlannerReply:
    return reading.data["reply"]

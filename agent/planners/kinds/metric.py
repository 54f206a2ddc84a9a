"""Metric questions through the semantic layer: "revenue by region last quarter", "top 5 products by revenue",
"EMEA vs APAC revenue", and follow-ups that change the thread's last query ("now split that by month").
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading


def match(question: Question, context: Context) -> Reading | None:
    read = context.planner.read_metric(context.request, question.tokens, notes=question.notes)
    if isinstance(read, str):  # not understood: the reply that says why, kept as the last resort
        return Reading("metric", 0.1, set(), {"text": read})
    args, said, used = read
    return Reading("metric", 0.7, used, {"args": args, "said": said},
                   describe="a metric query (" + said.removeprefix("I read this as: ").split(".")[0] + ")")


def plan(reading: Reading, context: Context) -> PlannerReply:
    if "text" in reading.data:
        return PlannerReply(text=reading.data["text"])
    return context.planner.metric_plan(reading.data["args"], reading.data["said"])

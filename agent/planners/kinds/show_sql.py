""""Show me the SQL", "how did you get that?": the SQL that produced the thread's last answer, for metric
queries (compiled by the semantic layer) as for SQL steps.
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.kinds.catalog_reads import cue_tokens
from agent.state import Plan

_SQL = frozenset({"sql", "query", "queries", "code"})
_SHOW = frozenset({"show", "see", "give", "display", "print", "view", "what", "which", "was", "used", "ran", "run"})
_HOW = frozenset({"how", "get", "got", "compute", "computed", "calculate", "calculated", "arrive", "derive",
                  "derived", "come", "work", "worked"})
_REFERENCE = frozenset({"that", "this", "it", "those", "these", "number", "answer", "result", "figure", "you"})


def match(question: Question, context: Context) -> Reading | None:
    sql, show = cue_tokens(question, _SQL), cue_tokens(question, _SHOW)
    how, ref = cue_tokens(question, _HOW), cue_tokens(question, _REFERENCE)
    asks_sql = bool(sql) and (bool(show) or len(question.content) <= 2)
    asks_how = "how" in {t.low for t in question.tokens} and len(how) >= 2 and bool(ref)
    if not (asks_sql or asks_how) or _last_plan(context) is None:
        return None
    return Reading("show_sql", 0.9, sql | show | how | ref | {t.index for t in question.tokens if t.is_filler},
                   describe="the SQL of the last answer")


def _last_plan(context: Context) -> Plan | None:
    for turn in reversed(context.request.history):
        if turn.role == "assistant" and turn.plan is not None:
            return turn.plan
    return None


def plan(reading: Reading, context: Context) -> PlannerReply:
    from core.errors import UserError
    from catalog.semantic.query import MetricQuery
    from catalog.semantic.runner import compile_for_workspace

    last = _last_plan(context)
    parts: list[str] = []
    for step in last.steps if last is not None else []:
        if step.tool == "query_metrics":
            try:
                sql = compile_for_workspace(context.planner.deps.workspace, MetricQuery(**step.args)).sql
            except UserError as e:
                parts.append(f"The last answer was the metric query {step.args}; it no longer compiles: {e}")
                continue
            parts.append(f"The last answer came from the semantic layer's metric query ({step.title}), compiled to:"
                         f"\n```sql\n{sql}\n```")
        elif "sql" in step.args or "select_sql" in step.args:
            sql = step.args.get("sql") or step.args.get("select_sql")
            parts.append(f"The last answer ran this SQL ({step.title}):\n```sql\n{sql}\n```")
        else:
            parts.append(f"The last answer ran the tool `{step.tool}` ({step.title}), which uses no SQL.")
    return PlannerReply(text="\n\n".join(parts) or "The last answer ran no query.")

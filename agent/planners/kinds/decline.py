"""Requests the planner declines with a reason, not for an unknown word: forecasts (numbers for periods that
have not happened) and writes to the warehouse's data ("drop the orders table", "delete returned orders").
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.kinds.catalog_reads import cue_tokens

_FORECAST = frozenset({"forecast", "forecasts", "forecasting", "predict", "predicts", "prediction", "predictions",
                       "projection", "projections", "projected", "extrapolate", "anticipate", "anticipated"})
_WRITE = frozenset({"drop", "delete", "deleting", "truncate", "purge", "wipe", "erase", "insert", "alter",
                    "overwrite", "destroy", "update"})
# Verbs that write only with an object of data ("remove every customer record", "set every status to x").
_WRITE_WITH_OBJECT = frozenset({"remove", "set", "change", "mark", "rename", "modify", "edit", "fix"})
_DATA_OBJECTS = frozenset({"record", "records", "row", "rows", "data", "table", "tables", "entry", "entries", "every",
                           "evry", "all", "each", "to"})


def match(question: Question, context: Context) -> Reading | None:
    forecast, write = cue_tokens(question, _FORECAST), cue_tokens(question, _WRITE)
    if cue_tokens(question, _WRITE_WITH_OBJECT) and cue_tokens(question, _DATA_OBJECTS) and "filter" not in {
            t.low for t in question.tokens}:
        write = cue_tokens(question, _WRITE_WITH_OBJECT)
    if not forecast and _future(question, context):  # a figure for a period that has not happened is a forecast
        forecast = {-1}
    if write:  # the rest of the question (what to delete) belongs to the request
        return Reading("decline", 0.95, {t.index for t in question.tokens}, {"why": "write"},
                       describe="a change to the warehouse's data")
    if forecast:
        return Reading("decline", 0.95, {t.index for t in question.tokens}, {"why": "forecast"},
                       describe="a forecast")
    return None


def _future(question: Question, context: Context) -> bool:
    """Whether the question's time range starts after today: a period that has not happened."""
    from agent.planners.time_phrases import read_time

    time = read_time(question.tokens, context.planner.clock())
    return time.start is not None and time.start > context.planner.clock()


def plan(reading: Reading, context: Context) -> PlannerReply:
    if reading.data["why"] == "write":
        return PlannerReply(text="I won't do that: dropping, deleting or changing data is a write to the warehouse, "
                                 "and the tools I may use only read it (or create a new derived table, after your "
                                 "approval). Ask the table's owner, or change the data outside Lathe.")
    today = context.planner.clock().isoformat()
    return PlannerReply(text="I can't forecast: that period has not happened yet, and I only report what the "
                             f"warehouse has recorded, up to today ({today}); a forecast would be a guess, not a "
                             "number from your data. Ask about a past period instead, e.g. the same metric by month "
                             "over the last year to see its trend.")

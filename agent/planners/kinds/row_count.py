"""Row counts of a table: "how many rows does orders have?", "how big is the customers table?".
"""
from __future__ import annotations

from sqlglot import exp

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import ROW_WORDS, TABLE_WORDS
from agent.planners.kinds.catalog_reads import cue_tokens, mentions, spans
from agent.state import Plan, Step

_COUNT = frozenset({"many", "count", "number", "size", "big", "large"})


def match(question: Question, context: Context) -> Reading | None:
    found = mentions(question, context)
    rows, count = cue_tokens(question, ROW_WORDS), cue_tokens(question, _COUNT)
    if not found or not rows or not count:
        return None
    used = rows | count | spans(found[:1]) | cue_tokens(question, TABLE_WORDS | {"in", "does", "have", "has", "is"})
    return Reading("row_count", 0.8, used, {"table": found[0].table},
                   describe=f"the row count of table `{found[0].table}`")


def plan(reading: Reading, context: Context) -> PlannerReply:
    table = reading.data["table"]
    sql = exp.select(exp.Count(this=exp.Star()).as_("row_count")).from_(exp.to_table(table)).sql(dialect="duckdb")
    step = Step(id="s1", tool="run_sql", args={"sql": sql}, title=f"Count the rows of `{table}`")
    return PlannerReply(plan=Plan(steps=[step], summary=f"Counting the rows of table `{table}`."))

"""The `respond` node: the turn's answer in words: what was understood, done, refused or not done.

It summarises results already in the state; it never runs a tool and never calls an LLM.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.events import TextDelta
from agent.health_text import health_answer
from agent.result_text import summary_sentence
from agent.time_window import window_of
from agent.state import AgentState, Turn

REPORTED_TOOLS = ("query_metrics", "run_sql")  # their tables end the answer with a sentence on what they show

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from agent.resources import AgentResources


def compose(state: AgentState) -> tuple[str, str, str]:
    """(what the planner said, already streamed; the rest of the answer; the outcome of the turn)."""
    plan = state.plan
    said = (state.reply or (plan.summary if plan is not None else "")).strip()
    if plan is None or not plan.steps:
        return said or "I have nothing to add.", "", "failed" if state.failure else "answered"
    if state.review is not None and state.review.status == "forbidden":
        return said, f"Nothing was run: {state.review.notice}", "rejected"
    if state.review is not None and state.review.status == "rejected":
        return said, (f"Nothing was run: the plan was rejected by {state.review.by or 'a reviewer'} "
                      f"({state.review.reason})."), "rejected"
    lines = []
    for s in plan.order():
        r = state.results.get(s.id)
        if r is None:
            lines.append(f"- not run: {s.title}")
        elif r.ok and r.table is not None and s.tool in REPORTED_TOOLS:
            lines.append(summary_sentence(s.title or s.tool, r.table, r.data.get("labels"), units=r.data.get("units"),
                                          window=window_of(r.table.sql, r.data.get("span"))))
        elif r.ok and s.tool == "endpoint_report" and r.data.get("summary"):
            lines.append(health_answer(r.data))
        elif r.ok:
            said = f"{s.title}: {r.text.splitlines()[0].strip() if r.text.strip() else 'done'}".rstrip(":")
            lines.append(said + ("" if said.endswith((".", "?", "!")) else "."))  # a sentence, not a log line
        else:
            lines.append(f"- failed: {s.title}: {r.error}")
    rest = "\n".join(lines)
    if state.failure is not None:
        tries = f" after {state.repairs} correction{'s' if state.repairs != 1 else ''}" if state.repairs else ""
        rest += (f"\n\nIt failed{tries}: step `{state.failure.step_id}` ({state.failure.tool}) said: "
                 f"{state.failure.error}")
        return said, rest, "failed"
    return said, rest, "answered"


def answer_text(state: AgentState) -> str:
    said, rest, _ = compose(state)
    return "\n\n".join(x for x in (said, rest) if x)


def respond_node(state: AgentState, runtime: Runtime[AgentResources]) -> dict[str, Any]:
    said, rest, outcome = compose(state)
    if rest:
        runtime.stream_writer(TextDelta(text=("\n\n" if said else "") + rest))
    elif said and (state.plan is None or not state.plan.steps) and not state.reply:
        runtime.stream_writer(TextDelta(text=said))
    # What ran goes into the history, so a follow-up ("now by month") can refer to it.
    steps = [s.call_text() + ("" if r.ok else " [failed]") for s in (state.plan.order() if state.plan else [])
             if (r := state.results.get(s.id)) is not None]
    text = "\n\n".join(x for x in (said, rest) if x)
    ran = state.plan if steps and outcome != "rejected" else None
    return {"history": [Turn(role="assistant", text=text, steps=steps, plan=ran)], "outcome": outcome}

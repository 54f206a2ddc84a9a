"""The LLM planner: the model writes the plan as tool calls, from a prompt that carries only the
retrieved catalog context, the thread's history and, when correcting, the failed step and its error.

It proposes only: its tool calls become plan steps that are validated, reviewed and run elsewhere.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import prompts
from agent.events import TextDelta
from agent.planners.base import Emit, PlannerReply, PlanRequest
from agent.state import Plan, PlanError, Step
from core.errors import UserError
from tools.base import LatheTool
from tools.registry import ToolRegistry

MAX_INVALID = 3  # times a plan that does not validate goes back to the model
MAX_CORRECTIONS = 3  # must match the graph's limit on corrections after a failed step
HISTORY_TURNS = 12
TITLE_CHARS = 100


class LlmPlanner:
    name = "llm"

    def __init__(self, model: Any, registry: ToolRegistry, tools: dict[str, LatheTool], stream: bool = True):
        self.registry = registry
        self.model = model.bind_tools(list(tools.values()))
        self.stream = stream

    def plan(self, request: PlanRequest, emit: Emit) -> PlannerReply:
        messages = self.messages(request)
        last_error = ""
        for _ in range(MAX_INVALID + 1):
            msg = self._ask(messages, emit)
            calls = list(msg.tool_calls)
            text = msg.text.strip()
            if not calls and not msg.invalid_tool_calls:
                return PlannerReply(text=text)
            try:
                if msg.invalid_tool_calls:
                    bad = msg.invalid_tool_calls[0]
                    raise PlanError(f"the arguments of `{bad.get('name')}` are not valid JSON: {bad.get('error') or bad.get('args')}")
                plan = Plan(steps=steps_from_calls(calls), summary=text).validated(self.registry)
                return PlannerReply(plan=plan)
            except PlanError as e:
                last_error = str(e)
                messages += _feedback(msg, calls, last_error)
        return PlannerReply(text=f"I could not write a plan that can run. The last problem: {last_error}")

    def messages(self, request: PlanRequest) -> list[Any]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

        out: list[Any] = [SystemMessage(prompts.render("planner_system", context=request.context,
                                                       today=dt.date.today().isoformat()))]
        for turn in request.history[-HISTORY_TURNS:]:
            if turn.role == "user":
                out.append(HumanMessage(turn.text))
            else:
                ran = ("\n\nSteps run: " + "; ".join(turn.steps)) if turn.steps else ""
                out.append(AIMessage(turn.text + ran))
        out.append(HumanMessage(request.text))
        if request.failure is not None and request.last_plan is not None:
            plan = request.last_plan
            out.append(AIMessage(plan.summary, tool_calls=[{"id": s.id, "name": s.tool, "args": s.args, "type": "tool_call"}
                                                           for s in plan.steps]))
            for s in plan.steps:
                r = request.results.get(s.id)
                content = ("error: " + (r.error or "") if r is not None and not r.ok
                           else r.text if r is not None else "not run: an earlier step failed")
                out.append(ToolMessage(content, tool_call_id=s.id))
            out.append(HumanMessage(prompts.render("repair", failure=request.failure, attempt=request.attempt,
                                                   max_attempts=MAX_CORRECTIONS)))
        return out

    def _ask(self, messages: list[Any], emit: Emit) -> Any:
        try:
            if not self.stream:
                return self.model.invoke(messages)
            acc = None
            for chunk in self.model.stream(messages):
                if chunk.text:
                    emit(TextDelta(text=chunk.text))
                acc = chunk if acc is None else acc + chunk
            if acc is None:
                raise UserError("the LLM sent an empty answer")
            return acc
        except UserError:
            raise
        except Exception as e:  # litellm raises its own hierarchy; the user needs the message, not the type tree
            raise UserError(f"the LLM call failed: {type(e).__name__}: {e}") from e


def steps_from_calls(calls: list[dict[str, Any]]) -> list[Step]:
    """One step per tool call, in the order the model wrote them, each after the one before."""
    steps: list[Step] = []
    for i, call in enumerate(calls, start=1):
        step = Step(id=f"s{i}", tool=call["name"], args=dict(call.get("args") or {}),
                    depends_on=[steps[-1].id] if steps else [])
        title = step.call_text()
        steps.append(step.model_copy(update={"title": title if len(title) <= TITLE_CHARS else title[:TITLE_CHARS - 1] + "…"}))
    return steps


def _feedback(msg: Any, calls: list[dict[str, Any]], error: str) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    ai = AIMessage(msg.text, tool_calls=[{**c, "type": "tool_call"} for c in calls])
    replies = [ToolMessage(f"not run: {error}", tool_call_id=c["id"]) for c in calls if c.get("id")]
    return [ai, *replies, HumanMessage(prompts.render("invalid_plan", error=error))]

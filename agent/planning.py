"""The `plan` node: asks the planner for a plan (or a correction of a failed one), validates it against
the tools and announces it. It never runs a step and never decides about approval.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.errors import UserError
from agent.events import PlanProposed, TextDelta
from agent.planners.base import PlanRequest
from agent.state import AgentState, Failure, PlanError

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from agent.resources import AgentResources


def plan_node(state: AgentState, runtime: Runtime[AgentResources]) -> dict[str, Any]:
    deps = runtime.context
    writer = runtime.stream_writer
    correcting = state.failure is not None and state.plan is not None and bool(state.plan.steps)
    planner = deps.planner_for(state.route, correcting)
    # The thread's history ends with this turn's own message, which the request carries already.
    history = state.history[:-1] if state.history and state.history[-1].role == "user" else state.history
    request = PlanRequest(text=state.request, route=state.route, context=state.context, history=history,
                          last_plan=state.plan if correcting else None,
                          results=state.results if correcting else {},
                          failure=state.failure if correcting else None,
                          attempt=state.repairs + 1 if correcting else 0)
    streamed = False

    def emit(event: Any) -> None:
        nonlocal streamed
        streamed = streamed or isinstance(event, TextDelta)
        writer(event)

    update: dict[str, Any] = {"review": None}
    if correcting:
        update["repairs"] = state.repairs + 1
    try:
        reply = planner.plan(request, emit)
        plan = reply.plan.validated(deps.registry) if reply.plan is not None and reply.plan.steps else None
        plan = deps.with_estimates(plan) if plan is not None else None  # an estimate may refuse the arguments
    except UserError as e:  # PlanError included: a planner that proposes something invalid says so
        kind = "plan" if isinstance(e, PlanError) else "planner"
        writer(TextDelta(text=("\n\n" if streamed else "") + f"I could not make a plan: {e}"))
        update.update(reply=f"I could not make a plan: {e}",
                      failure=Failure(step_id=kind, tool=getattr(planner, "name", kind), args={}, error=str(e)))
        if not correcting:
            update.update(plan=None, results={})
        return update
    said = reply.text or (plan.summary if plan is not None else "")
    if said and not streamed:
        writer(TextDelta(text=said))
    update["reply"] = reply.text
    if plan is None:
        if not correcting:  # a correction that gives up leaves the failed plan and its error for the answer
            update.update(plan=None, results={})
        return update
    writer(PlanProposed(plan=plan, plan_hash=plan.hash(), needs_approval=deps.policy.needs_approval(plan)))
    update.update(plan=plan, results={}, failure=None)
    return update


def after_plan(state: AgentState) -> str:
    if state.plan is not None and state.plan.steps and state.failure is None:
        return "review"
    return "respond"

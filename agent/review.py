"""The `review` node and its policy: which steps wait for a person, and what a decision does.

The graph stops with `interrupt()` and resumes with a `Decision`; only an approver can approve, and a
step that is not `read` always waits, whatever the plan or the text that led to it says.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import UserError
from core.principal import may_approve, may_propose
from core.workspace import Workspace
from agent import audit_log
from agent.audit_log import AuditEntry
from agent.state import AgentState, Decision, Plan, Review, Risk

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.runtime import Runtime

    from agent.resources import AgentResources

ALWAYS_REVIEWED = frozenset({Risk.write, Risk.compute, Risk.deploy})


class ReviewPolicy(BaseModel):
    """`[review]` of lathe.toml. Steps of the listed risks wait for approval."""
    model_config = ConfigDict(extra="forbid")

    require_approval: set[Risk] = Field(default_factory=lambda: set(ALWAYS_REVIEWED))
    four_eyes: set[Risk] = Field(default_factory=lambda: {Risk.deploy}, description=(
        "steps of these risks may not be approved by the person who asked, whenever another approver exists"))

    @field_validator("require_approval")
    @classmethod
    def _keeps_changes_reviewed(cls, v: set[Risk]) -> set[Risk]:
        missing = ALWAYS_REVIEWED - v
        if missing:
            names = ", ".join(sorted(r.value for r in missing))
            raise ValueError(f"must include {names}: steps that change things or spend compute always wait for "
                             "approval (add `read` to review every step)")
        return v

    @classmethod
    def for_workspace(cls, ws: Workspace) -> "ReviewPolicy":
        raw = (ws.settings.model_extra or {}).get("review", {})
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            key = ".".join(str(x) for x in err["loc"]) or "review"
            raise UserError(f"{ws.settings_path}: `[review] {key}`: {err['msg']}") from None

    def needs_approval(self, plan: Plan) -> list[str]:
        return [s.id for s in plan.steps if s.risk in self.require_approval]


def who_approves(ws: Workspace, besides: str = "") -> str:
    from core.users import approvers

    names = [n for n in approvers(ws) if n != besides]
    return ", ".join(names) if names else "a user with the approver role"


def own_approval_refused(ws: Workspace, policy: ReviewPolicy, plan: Plan, needs: list[str], asker: str,
                         approver: str) -> str | None:
    """Why `approver` may not approve `asker`'s plan under four-eyes, or None. Four-eyes holds only where another
    approver exists, so that a workspace with one approver can still act."""
    from core.users import approvers

    risky = sorted({s.risk.value for s in plan.steps if s.id in needs and s.risk in policy.four_eyes})
    others = [n for n in approvers(ws) if n != asker]
    if not risky or approver != asker or not others:
        return None
    return (f"`{approver}` asked for this plan and may not approve it too ({'/'.join(risky)} steps need a second "
            f"person, `[review] four_eyes`): {', '.join(others)} may approve it")


def approval_request(thread_id: str, plan: Plan, needs: list[str], requested_by: str,
                     notice: str | None) -> dict[str, Any]:
    """The interrupt's value: everything a front-end shows and a decision must refer to, as plain JSON."""
    return {"thread_id": thread_id, "plan": plan.model_dump(mode="json"), "plan_hash": plan.hash(),
            "needs_approval": needs, "requested_by": requested_by, "notice": notice}


def review_node(state: AgentState, runtime: Runtime[AgentResources], config: RunnableConfig) -> dict[str, Any]:
    from langgraph.types import interrupt

    deps = runtime.context
    plan = state.plan
    assert plan is not None
    needs = deps.policy.needs_approval(plan)
    if not needs:
        return {"review": Review(status="not_needed")}
    if not may_propose(state.requested_roles):
        roles = ", ".join(state.requested_roles) or "no role"
        return {"review": Review(status="forbidden", by=state.requested_by, notice=(
            f"`{state.requested_by}` is a viewer{'' if roles == 'viewer' else f' ({roles})'} and may only ask "
            "questions that read; this plan "
            f"{'/'.join(sorted({s.risk.value for s in plan.steps if s.id in needs}))}s (steps {', '.join(needs)}). "
            f"An analyst can propose it, and {who_approves(deps.workspace)} may approve it."))}
    thread_id = config["configurable"]["thread_id"]
    notice = state.review.notice if state.review is not None else None
    raw = interrupt(approval_request(thread_id, plan, needs, state.requested_by, notice))
    try:
        decision = Decision.model_validate(raw)
    except ValidationError as e:
        return {"review": Review(status="refused", notice=f"the decision was not understood: {e.errors()[0]['msg']}")}
    if decision.plan_hash != plan.hash():
        return {"review": Review(status="refused", by=decision.principal,
                                 notice="that decision was about an earlier version of the plan; decide on this one")}

    def log(kind: str, reason: str = "", **detail: Any) -> None:
        audit_log.record(deps.workspace, AuditEntry(
            decision_id=decision.decision_id, thread_id=thread_id, principal=decision.principal,
            plan_hash=decision.plan_hash, decision=kind, reason=reason, detail=detail))

    if decision.action == "approve":
        if not may_approve(decision.roles):
            log("refused", "approving needs the approver role")
            return {"review": Review(status="refused", by=decision.principal,
                                     notice=f"`{decision.principal}` may not approve: that needs the approver role")}
        refused = own_approval_refused(deps.workspace, deps.policy, plan, needs, state.requested_by,
                                       decision.principal)
        if refused:
            log("refused", "four-eyes: the asker may not approve")
            return {"review": Review(status="refused", by=decision.principal, notice=refused)}
        log("approved", decision.reason, steps=needs, requested_by=state.requested_by)
        return {"review": Review(status="approved", by=decision.principal, reason=decision.reason)}
    if decision.action == "reject":
        reason = decision.reason.strip() or "no reason given"
        log("rejected", reason)
        return {"review": Review(status="rejected", by=decision.principal, reason=reason)}
    try:
        edited = deps.with_estimates(plan.edited(decision.edits, deps.registry))
    except UserError as e:  # PlanError included; an estimate may refuse the edited arguments
        return {"review": Review(status="refused", by=decision.principal, notice=f"the edit was not applied: {e}")}
    log("edited", decision.reason, edits=decision.edits, new_plan_hash=edited.hash())
    return {"plan": edited, "review": Review(status="edited", by=decision.principal, reason=decision.reason)}


def after_review(state: AgentState) -> str:
    status = state.review.status if state.review else "not_needed"
    if status in ("approved", "not_needed"):
        return "execute"
    if status in ("rejected", "forbidden"):
        return "respond"
    return "review"  # edited, or a decision that was refused: the (new) plan waits again

"""The planner seam: what the `plan` node asks (`PlanRequest`) and what a planner answers (`PlannerReply`).

An LLM planner, the offline planner and the direct-SQL planner all implement `Planner`; a planner only
proposes: it never runs a tool and never decides about approval.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from agent.state import CatalogContext, Failure, Plan, StepResult, Turn

if TYPE_CHECKING:
    from agent.catalog_cache import CatalogCache
    from core.workspace import Workspace
    from tools.base import LatheTool
    from tools.registry import ToolRegistry

# A planner streams what it writes (text deltas) to the front-end through this.
Emit = Callable[[Any], None]


class PlanRequest(BaseModel):
    text: str = Field(..., description="the user's message for this turn")
    route: str = "question"
    context: CatalogContext = Field(default_factory=CatalogContext)
    history: list[Turn] = Field(default_factory=list, description="earlier turns of the thread, oldest first")
    last_plan: Plan | None = Field(None, description="the plan of this turn that failed, when correcting it")
    results: dict[str, StepResult] = Field(default_factory=dict, description="what that plan's steps answered")
    failure: Failure | None = Field(None, description="the failed step to correct; None on a first attempt")
    attempt: int = Field(0, description="how many corrections came before this one")


class PlannerReply(BaseModel):
    plan: Plan | None = None
    text: str = Field("", description="what the planner understood, did not understand, or answers in words")


@runtime_checkable
class Planner(Protocol):
    name: str

    def plan(self, request: PlanRequest, emit: Emit) -> PlannerReply:
        """A plan for the request (or for correcting `request.failure`), or a reply in words only."""
        ...


@dataclass
class PlannerDeps:
    """What a planner may use: the workspace, the tool registry and bound tools, the session's catalog cache."""
    workspace: "Workspace"
    registry: "ToolRegistry"
    tools: dict[str, "LatheTool"]
    catalog: "CatalogCache"

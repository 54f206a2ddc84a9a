"""Typed events a session yields for front-ends to render: text, plans, approvals, steps, tables, charts.

Plain pydantic data, JSON-serialisable with `to_json()`; an event never carries live objects or rows
that are not plain JSON values.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from agent.state import Plan, TableData


class _Event(BaseModel):
    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class TextDelta(_Event):
    type: Literal["text_delta"] = "text_delta"
    text: str


class PlanProposed(_Event):
    type: Literal["plan_proposed"] = "plan_proposed"
    plan: Plan
    plan_hash: str
    needs_approval: list[str] = Field(default_factory=list, description="ids of the steps that wait for approval")


class ApprovalNeeded(_Event):
    type: Literal["approval_needed"] = "approval_needed"
    thread_id: str
    plan: Plan
    plan_hash: str
    needs_approval: list[str]
    requested_by: str = ""
    notice: str | None = Field(None, description="why an earlier decision on this plan was not accepted")


class StepStarted(_Event):
    type: Literal["step_started"] = "step_started"
    step_id: str
    tool: str
    title: str


class StepFinished(_Event):
    type: Literal["step_finished"] = "step_finished"
    step_id: str
    tool: str
    ok: bool
    text: str = ""
    error: str | None = None


class TableEvent(_Event):
    type: Literal["table"] = "table"
    step_id: str
    table: TableData


class ChartSpec(_Event):
    """A chart a front-end can draw (e.g. with Plotly): which columns go on which axis."""
    type: Literal["chart"] = "chart"
    step_id: str
    kind: Literal["line", "bar"]
    x: str
    y: list[str]
    color: str | None = None
    title: str = ""


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    message: str
    step_id: str | None = None


class Done(_Event):
    type: Literal["done"] = "done"
    thread_id: str
    status: Literal["answered", "waiting_approval", "rejected", "failed"]
    text: str = ""


Event = Annotated[TextDelta | PlanProposed | ApprovalNeeded | StepStarted | StepFinished | TableEvent | ChartSpec
                  | ErrorEvent | Done, Field(discriminator="type")]

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def event_from_json(data: dict[str, Any]) -> Event:
    """Rebuild an event from `to_json()` output (front-ends in another process)."""
    return _ADAPTER.validate_python(data)

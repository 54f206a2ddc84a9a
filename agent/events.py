"""Typed events a session yields for front-ends to render: text, plans, approvals, steps, tables, charts, and
the progress of a fine-tuning job that a front-end follows.

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
    job_id: str | None = Field(None, description="the job this step started (a front-end may follow it)")
    job_kind: str | None = Field(None, description="that job's kind (finetune, batch): how it is followed")
    reveal: dict[str, str] = Field(default_factory=dict, description="secrets to show once (an endpoint's API key "
                                   "with its URL and model); the thread keeps only their redacted form")


class TableEvent(_Event):
    type: Literal["table"] = "table"
    step_id: str
    table: TableData
    labels: dict[str, str] = Field(default_factory=dict, description="the semantic layer's labels of its columns")
    units: dict[str, str] = Field(default_factory=dict, description="its metrics' units, by column (USD, percent)")


class ChartSpec(_Event):
    """A chart a front-end can draw (e.g. with Plotly): which columns go on which axis."""
    type: Literal["chart"] = "chart"
    step_id: str
    kind: Literal["line", "bar"]
    x: str
    y: list[str]
    color: str | None = None
    title: str = ""
    pie: bool = Field(False, description="the rows are parts of a whole (one additive measure over a few "
                      "categories), which a pie may show")


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    message: str
    step_id: str | None = None


class JobProgress(_Event):
    """Where a job stands, from `Session.follow_job`: sent when something changed, and once more at its end with
    the evaluation figures, the report and the registered version."""
    type: Literal["job_progress"] = "job_progress"
    job_id: str
    kind: str = Field("finetune", description="the job's kind: finetune, batch, …")
    unit: str = Field("steps", description="what `step` and `max_steps` count: steps of training, rows of a batch")
    status: str = Field(description="queued, validating, running, succeeded, failed or cancelled")
    step: int = 0
    max_steps: int | None = Field(None, description="the step it stops at; None when it trains for whole epochs")
    metrics: dict[str, float] = Field(default_factory=dict, description="latest loss, reward, tokens_per_s, …")
    text: str = Field("", description="where it stands, in one line")
    final: bool = Field(False, description="the job has ended: succeeded, failed or cancelled")
    timed_out: bool = Field(False, description="following stopped at its time limit; the job goes on")
    evaluation: dict[str, Any] = Field(default_factory=dict, description="at the end: eval loss, base vs tuned, …")
    report: str | None = Field(None, description="at the end: the report's JSON file")
    curves: str | None = Field(None, description="at the end: the PNG of the training curves and comparison")
    model_version: str | None = Field(None, description="at the end: the registered version, `name/version`")
    output_table: str | None = Field(None, description="at the end of a batch: its predictions table")
    error: str | None = None
    elapsed_s: float | None = Field(None, description="seconds since it started (to its end, once it has ended)")
    estimated_s: float | None = Field(None, description="the plan's estimate of its duration, in seconds")
    step_s: float | None = Field(None, description="seconds per step so far, from the first logged step on")
    loss_curve: list[tuple[int, float]] = Field(default_factory=list, description="(step, loss), thinned")


class Done(_Event):
    type: Literal["done"] = "done"
    thread_id: str
    status: Literal["answered", "waiting_approval", "rejected", "failed"]
    text: str = ""


class AlertRaised(_Event):
    """An alert a monitor raised (e.g. response length drifted), pushed to the chat by `Session.new_alerts`."""
    type: Literal["alert"] = "alert"
    alert_id: str
    endpoint: str
    rule: str
    message: str
    created_at: float


Event = Annotated[TextDelta | PlanProposed | ApprovalNeeded | StepStarted | StepFinished | TableEvent | ChartSpec
                  | ErrorEvent | JobProgress | AlertRaised | Done, Field(discriminator="type")]

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def event_from_json(data: dict[str, Any]) -> Event:
    """Rebuild an event from `to_json()` output (front-ends in another process)."""
    return _ADAPTER.validate_python(data)

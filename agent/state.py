"""The agent's typed state: steps, plans (validated against the tool registry), results, decisions.

Everything here is plain data that the checkpointer stores; nothing here runs a tool or calls an LLM.
"""
from __future__ import annotations

import hashlib
import json
from graphlib import CycleError, TopologicalSorter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import UserError
from catalog.suggestions import unknown
from tools.registry import ToolRegistry
from tools.risk import Risk

__all__ = ["Risk", "Step", "Plan", "PlanError", "TableData", "StepResult", "Failure", "Decision", "Review",
           "Turn", "TableBrief", "ColumnBrief", "MetricBrief", "GlossaryBrief", "CatalogContext", "AgentState"]

# Rows of a result kept in the checkpoint; the live table event carries all of them.
KEPT_ROWS = 200


class PlanError(UserError):
    """A plan that cannot run as written: unknown tool, bad arguments, unknown or circular dependencies."""


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    risk: Risk = Risk.read  # set from the tool on validation; a planner cannot lower it
    estimated_cost: str = ""
    title: str = ""

    def call_text(self) -> str:
        """`tool(arg=value, ...)`, for people and for the LLM's history."""
        args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in self.args.items()
                         if v not in (None, [], {}, ""))
        return f"{self.tool}({args})"


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(default_factory=list)
    summary: str = ""

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise PlanError(f"the plan has no step `{step_id}`; its steps are "
                        + ", ".join(f"`{s.id}`" for s in self.steps))

    def hash(self) -> str:
        """A digest of what would run (tools, arguments, order), so a decision names exactly one plan."""
        body = [{"id": s.id, "tool": s.tool, "args": s.args, "depends_on": s.depends_on} for s in self.steps]
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def order(self) -> list[Step]:
        """Steps in an order that respects dependencies, otherwise as written."""
        pos = {s.id: i for i, s in enumerate(self.steps)}
        ts = TopologicalSorter({s.id: s.depends_on for s in self.steps})
        ts.prepare()
        out: list[Step] = []
        while ts.is_active():
            ready = sorted(ts.get_ready(), key=pos.__getitem__)
            out += [self.steps[pos[i]] for i in ready]
            ts.done(*ready)
        return out

    def validated(self, registry: ToolRegistry) -> "Plan":
        """This plan checked against the tools: arguments parsed and filled with defaults, risks from the tools.

        Raises one `PlanError` naming every problem, step by step.
        """
        problems: list[str] = []
        steps: list[Step] = []
        seen: set[str] = set()
        for s in self.steps:
            where = f"step `{s.id}`"
            if s.id in seen:
                problems.append(f"{where}: the id is used twice")
            seen.add(s.id)
            if s.tool not in registry:
                problems.append(f"{where}: {unknown('tool', s.tool, registry.names)}")
                continue
            tool = registry.get(s.tool)
            try:
                args = tool.schema().model_validate(s.args).model_dump(mode="json")
            except ValidationError as e:
                problems += [f"{where} ({s.tool}): {_arg_error(err)}" for err in e.errors()]
                continue
            steps.append(s.model_copy(update={"args": args, "risk": tool.risk_for(args), "title": s.title or s.tool}))
        ids = {s.id for s in self.steps}
        for s in self.steps:
            for d in s.depends_on:
                if d not in ids:
                    problems.append(f"step `{s.id}` depends on `{d}`, which is not a step of the plan")
                elif d == s.id:
                    problems.append(f"step `{s.id}` depends on itself")
        if not problems:
            try:
                TopologicalSorter({s.id: s.depends_on for s in self.steps}).prepare()
            except CycleError as e:
                cycle = " → ".join(f"`{x}`" for x in e.args[1])
                problems.append(f"the steps depend on each other in a circle: {cycle}")
        if problems:
            raise PlanError("the plan cannot run: " + "; ".join(problems))
        return Plan(steps=steps, summary=self.summary)

    def edited(self, edits: dict[str, dict[str, Any]], registry: ToolRegistry) -> "Plan":
        """A copy with some steps' arguments changed (merged over the old ones), validated again."""
        if not edits:
            raise PlanError("an edit must change at least one step's arguments, e.g. {\"s1\": {\"limit\": 10}}")
        steps, summary = [], self.summary
        for s in self.steps:
            change = edits.get(s.id)
            if change:
                # The planner's title and summary described the old arguments: a name they quote follows the edit;
                # what they cannot show is said after the title.
                title, unsaid = s.title or s.tool, []
                for k, v in change.items():
                    old = s.args.get(k)
                    if isinstance(old, str) and isinstance(v, str) and len(old) > 2 and old in title:
                        title, summary = title.replace(old, v), summary.replace(old, v)
                    else:
                        unsaid.append(f"{k}={v!r}")
                if unsaid:
                    title = f"{title} (edited: {', '.join(unsaid)[:120]})"
                steps.append(s.model_copy(update={"args": {**s.args, **change}, "title": title}))
            else:
                steps.append(s)
        for sid in edits:
            self.step(sid)  # names an unknown step clearly
        return Plan(steps=steps, summary=summary).validated(registry)


def _arg_error(err: Any) -> str:
    loc = ".".join(str(x) for x in err.get("loc", ()))
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "is not an argument of this tool"
    return f"argument `{loc}`: {msg}" if loc else msg


class TableData(BaseModel):
    """A query result as plain JSON values, as events and checkpoints carry it."""
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    sql: str = ""
    warnings: list[str] = Field(default_factory=list)
    masked_columns: list[str] = Field(default_factory=list)
    row_count: int = 0  # rows the query returned, before any cut for the checkpoint

    @classmethod
    def from_result(cls, result: Any, keep: int | None = None) -> "TableData":
        j = result.to_json()
        rows = j["rows"]
        return cls(columns=j["columns"], rows=rows if keep is None else rows[:keep],
                   truncated=bool(j.get("truncated")) or (keep is not None and len(rows) > keep),
                   sql=j.get("sql", ""), warnings=j.get("warnings", []),
                   masked_columns=j.get("masked_columns", []), row_count=len(rows))


class StepResult(BaseModel):
    step_id: str
    tool: str
    ok: bool
    text: str = ""
    error: str | None = None
    table: TableData | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""


class Failure(BaseModel):
    """The step that failed and why: what a planner gets back to correct the plan."""
    step_id: str
    tool: str
    args: dict[str, Any]
    error: str


class Decision(BaseModel):
    """What a person decided about a waiting plan; the value the graph resumes with."""
    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject", "edit"]
    principal: str
    roles: list[str] = Field(default_factory=list)
    reason: str = ""
    edits: dict[str, dict[str, Any]] = Field(default_factory=dict)
    plan_hash: str
    decision_id: str


class Review(BaseModel):
    status: Literal["not_needed", "approved", "rejected", "edited", "refused", "forbidden"]
    by: str | None = None
    reason: str = ""
    notice: str | None = Field(None, description="why the last decision was not accepted, shown with the plan")


class Turn(BaseModel):
    """One message of the conversation, as planners see the thread's history."""
    role: Literal["user", "assistant"]
    text: str
    steps: list[str] = Field(default_factory=list, description="the tool calls that ran, as `tool(args)`")
    plan: Plan | None = Field(None, description="the plan this answer ran (assistant turns), for follow-ups "
                                                 "that change it: \"now by month\", \"only for EMEA\"")


class ColumnBrief(BaseModel):
    name: str
    type: str = ""
    description: str = ""
    pii: str | None = None
    synonyms: list[str] = Field(default_factory=list)
    samples: list[str] = Field(default_factory=list, description="a few values, never of a PII column")


class TableBrief(BaseModel):
    name: str
    description: str = ""
    row_count: int | None = None
    columns: list[ColumnBrief] = Field(default_factory=list)


class MetricBrief(BaseModel):
    name: str
    type: str
    description: str = ""
    dimensions: list[str] = Field(default_factory=list)


class GlossaryBrief(BaseModel):
    name: str
    definition: str = ""
    synonyms: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)


class CatalogContext(BaseModel):
    """The part of the catalog relevant to one request: all a planner's prompt may carry."""
    tables: list[TableBrief] = Field(default_factory=list)
    metrics: list[MetricBrief] = Field(default_factory=list)
    glossary: list[GlossaryBrief] = Field(default_factory=list)

    def names(self) -> set[str]:
        return {f"table:{t.name}" for t in self.tables} | {f"metric:{m.name}" for m in self.metrics} | {
            f"glossary:{g.name}" for g in self.glossary}


def _append(old: list[Turn], new: list[Turn]) -> list[Turn]:
    return [*old, *new]


class AgentState(BaseModel):
    """The graph's state. `history` accumulates over a thread; the rest describes the current turn."""
    history: Annotated[list[Turn], _append] = Field(default_factory=list)
    request: str = ""
    requested_by: str = ""
    requested_roles: list[str] = Field(default_factory=list, description="the asker's roles when they asked")
    route: str = ""
    context: CatalogContext = Field(default_factory=CatalogContext)
    plan: Plan | None = None
    reply: str = ""
    review: Review | None = None
    results: dict[str, StepResult] = Field(default_factory=dict)
    failure: Failure | None = None
    repairs: int = 0
    outcome: Literal["", "answered", "rejected", "failed"] = ""


# Types the checkpointer may rebuild from state.sqlite (LangGraph refuses unknown classes in strict mode).
STATE_TYPES: tuple[type, ...] = (Step, Plan, TableData, StepResult, Failure, Decision, Review, Turn, ColumnBrief,
                                 TableBrief, MetricBrief, GlossaryBrief, CatalogContext, AgentState, Risk)

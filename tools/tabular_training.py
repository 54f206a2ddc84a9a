"""Tools for training a model on tables from the chat: propose a plan from a plain request (the label in words and
SQL, the features, the split, the family, the metric and the budget, each with why) and start the approved `train`
job (risk `compute`). Thin wrappers over `runtimes/tabular/`: proposing reads the catalog and the warehouse and
starts nothing; only `start_training` spends compute.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, ValidationError, create_model

from core.errors import UserError
from core.workspace import Workspace
from runtimes.tabular.spec import TrainSpec
from tools.base import LatheTool, ToolArgs, ToolOutput, open_choice_fields
from tools.risk import Risk


class _Request(ToolArgs):
    """The request read into catalog names; the proposal fills in the label, features and the rest when not given."""
    goal: str = Field("", description="what the user wants predicted, in their words")
    entity: str | None = Field(None, description="the catalog table with one row per thing predicted, e.g. customers")
    target: str | None = Field(None, description="`churn`, a column of the entity, or `table.column` of its lines "
                                                 "(summed per entity row)")
    horizon_days: int | None = Field(None, ge=1, description="churn: days after each cutoff without activity (30)")
    sources: list[str] = Field(default_factory=list, description="tables to draw features from (default: all related)")
    only: list[str] = Field(default_factory=list, description="columns of the entity and its parents the request names "
                                                              "as features (default: every usable one)")


# The choices are the training spec's own fields, each open until proposed or given.
TrainChoices = create_model("TrainChoices", __base__=_Request, __module__=__name__,
                            **open_choice_fields(TrainSpec, ("label", "features", "columns", "task", "family", "metric",
                                                             "trials", "minutes", "name", "sensitive")))


def choices_of(data: dict[str, Any]) -> Any:
    """`TrainChoices` from what a request said, or a `UserError` naming the field that is wrong."""
    try:
        return TrainChoices.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise UserError(f"training request: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


class Proposed(BaseModel):
    """A proposal and the plan of its spec: what the approval shows."""
    spec: TrainSpec
    proposal: str  # the label in words and SQL, the features and what was left out ("" for a spec given whole)
    plan: str  # task, family, metric, split, baseline, budget and search space, each with why

    @property
    def text(self) -> str:
        return "\n".join(x for x in (self.proposal, self.plan) if x)


_PLANS: dict[tuple[str, str, str, float], Any] = {}  # one plan per spec and warehouse state: planning reads every row


def plan_of(ws: Workspace, spec: TrainSpec, principal: Any = None) -> Any:
    """The `TrainPlan` of a spec for a principal, once per spec and warehouse state: the approval shows it, and the
    job started from the same spec stores and runs this very plan."""
    from runtimes.tabular.planning import plan_train

    key = (str(ws.root), spec.model_dump_json(), getattr(principal, "name", ""),
           ws.warehouse_path.stat().st_mtime if ws.warehouse_path.exists() else 0.0)
    if key not in _PLANS:
        _PLANS[key] = plan_train(ws, spec, principal)
    return _PLANS[key]


def proposal_of(ws: Workspace, choices: Any, principal: Any = None) -> Proposed:
    """The spec the choices make (proposed from the catalog unless a label is given) and its plan in words."""
    from runtimes.tabular.proposal import propose

    c = TrainChoices.model_validate(choices) if not isinstance(choices, TrainChoices) else choices
    passed = {k: getattr(c, k) for k in ("task", "metric", "trials", "minutes", "name") if getattr(c, k) is not None}
    if c.family is not None:
        passed["family"] = c.family
    if c.label is not None:
        spec = TrainSpec.parse({"label": c.label, "features": c.features or [], "columns": c.columns or [], **passed})
        head = ""
    else:
        if not c.entity or not c.target:
            raise UserError("say what to predict and for which table: e.g. entity=customers target=churn, or "
                            "entity=orders target=order_items.amount")
        ask = {"entity": c.entity, "target": c.target, "sources": c.sources, "only": c.only, **passed}
        if c.horizon_days:
            ask["horizon_days"] = c.horizon_days
        proposal = propose(ws, ask)
        spec, head = proposal.spec, proposal.explain()
    if c.sensitive:  # named in the request, besides the columns the catalog tags
        spec = spec.model_copy(update={"sensitive": list(c.sensitive)})
    plan = plan_of(ws, spec, principal)
    return Proposed(spec=spec, proposal=head, plan=plan.explain())


class ProposeTraining(LatheTool):
    name: str = "propose_training"
    description: str = ("Propose a model trained on catalog tables from a plain request (\"predict which customers will "
                        "churn next month\"): the label with a plain definition and its SQL, the features (feature "
                        "views, or columns from the catalog, never PII or values from after the label time), the "
                        "split (by time where there is time), the model family, the metric and the tuning budget, "
                        "each with why; its `start_training` arguments are in the answer. Starts nothing.")
    args_schema: type[BaseModel] = TrainChoices
    risk = Risk.read

    def _run(self, **args: Any) -> ToolOutput:
        proposed = proposal_of(self.workspace, TrainChoices(**args), self.principal)
        spec = proposed.spec.model_dump(mode="json", exclude_none=True)
        return ToolOutput(text=f"The proposed model:\n{proposed.text}\n\nstart_training arguments: {json.dumps(spec)}",
                          data={"spec": spec})


class StartTrainingArgs(TrainSpec, ToolArgs):
    """A training job's spec, field for field."""


class StartTraining(LatheTool):
    name: str = "start_training"
    description: str = ("Start training a model on tables (spends compute, so it waits for approval): the label source "
                        "(a table or one read query) with its column, entity key and time, the features, family, metric "
                        "and budget, as `propose_training` proposed them. Follow it with `job_status`.")
    args_schema: type[BaseModel] = StartTrainingArgs
    risk = Risk.compute

    def estimate(self, args: BaseModel) -> str:
        try:
            plan = plan_of(self.workspace, TrainSpec.parse(args.model_dump()), self.principal)
        except UserError as e:
            return f"cannot estimate: {e}"
        b = plan.budget
        budget = " or ".join(x for x in (f"{b['trials']} trials" if b.get("trials") else "",
                                         f"{b['minutes']:g} minutes" if b.get("minutes") else "") if x)
        return f"{plan.task} on {plan.rows:,} rows, {len(plan.features)} features; tuning {budget}"

    def _run(self, **args: Any) -> ToolOutput:
        from runtimes.jobs.lifecycle import submit
        from runtimes.tabular.train_kind import planned

        spec = TrainSpec.parse(args)
        plan = plan_of(self.workspace, spec, self.principal)
        job = submit(self.workspace, "train", planned=planned(plan))  # the plan as approved
        return ToolOutput(text=f"started job {job.id} ({job.status}): {plan.spec.family} {plan.task} of "
                               f"`{spec.label.column}` on {plan.rows:,} rows; ask \"how is the job doing?\" to follow it",
                          data={"job_id": job.id, "kind": job.kind, "status": job.status})

"""Training a model on tables ("predict which customers will churn next month", "build a classifier …"): the request
read by `agent/planners/train_intents.py`, the proposal (label in words and SQL, features, split, family, metric,
budget) from `tools/tabular_training.py`, and a `start_training` step that waits for approval. Decided by its cue
alone: a prediction about the rows of a table is never a forecast of a total to decline.
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.train_intents import read_request, wants_model
from agent.state import Plan, Step
from core.errors import UserError


def match(question: Question, context: Context) -> Reading | None:
    if context.request.route == "sql" or not wants_model(question.text, question.tokens, context.catalog):
        return None
    reading = read_request(question.text, question.tokens, context.catalog)
    return Reading("train", 1.0, {t.index for t in question.tokens}, {"reading": reading}, exclusive=True,
                   describe="a model trained on tables")


def plan(reading: Reading, context: Context) -> PlannerReply:
    from tools.tabular_training import choices_of, proposal_of

    r = reading.data["reading"]
    if r.problem:
        return PlannerReply(text=r.problem)
    settings = dict(r.settings)
    horizon = settings.pop("horizon_days", None)
    try:
        choices = choices_of({"goal": context.request.text.strip(), "entity": r.entity, "target": r.target,
                              "sources": r.sources, "only": r.only, "horizon_days": horizon, **settings})
        tool = context.planner.deps.tools.get("start_training")  # bound to the session's principal: data as they see it
        proposed = proposal_of(context.planner.deps.workspace, choices, getattr(tool, "principal", None))
    except UserError as e:
        return PlannerReply(text=f"I read this as a model predicting `{r.target}` for each row of `{r.entity}`, but it "
                                 f"cannot be planned: {e}")
    args = proposed.spec.model_dump(mode="json", exclude_none=True)
    title = f"Train {proposed.spec.family} on `{r.entity}` to predict `{proposed.spec.label.column}`"
    summary = (f"The proposed model:\n{proposed.text}\n\nTraining spends compute, so it waits for your approval "
               "(approve to start it, reject to start nothing, or edit the step's arguments).")
    return PlannerReply(plan=Plan(steps=[Step(id="s1", tool="start_training", args=args, title=title)],
                                  summary=summary))

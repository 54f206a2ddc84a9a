"""The offline planner's guided fine-tuning: one decision per turn (table and columns, technique, base model),
then the plan with its estimate and a `start_finetune` step that waits for approval; "how is the job doing?"
answers from `job_status`. The answers so far live in the thread history, as the last `propose_finetune` step.

It proposes plans only: it never starts a job, and never skips the approval a compute step needs.
"""
from __future__ import annotations

from typing import Any

from catalog.errors import UserError
from catalog.workspace import Workspace
from agent.planners.base import PlannerReply, PlanRequest
from agent.state import Plan, Step, Turn
from tools.finetune import TECHNIQUES, FinetuneChoices, dry_run, model_options, question

_PUNCTUATION = ",.;:!?\"'`()[]{}"
_STATUS_WORDS = frozenset({"how", "status", "progress", "doing", "going", "done", "finished", "report", "evaluation"})
_JOB_WORDS = frozenset({"job", "training", "run", "finetune", "fine-tune", "fine-tuning"})
_TECHNIQUE_NAMES = {"sft": "sft", "dpo": "dpo", "rlvr": "rlvr", "rlaif": "rlaif", "grpo": "rlvr"}


def plan_finetune_turn(ws: Workspace, request: PlanRequest) -> PlannerReply | None:
    """A reply when the message asks to fine-tune, answers the guided flow's last question, or asks about a
    job; None when it is none of these (the other intents read it)."""
    words = _words(request.text)
    pending = _pending(request.history)
    if request.route == "sql" and pending is None:
        return None  # typed SQL is SQL unless it answers the flow's open question
    if _asks_job_status(words) and not wants_finetune(words):
        step = Step(id="s1", tool="job_status", title="Report the latest fine-tuning job")
        return PlannerReply(plan=Plan(steps=[step], summary="Checking the latest fine-tuning job."))
    if pending is None and not wants_finetune(words):
        return None
    choices = pending if pending is not None and not wants_finetune(words) else FinetuneChoices(goal=request.text.strip())
    try:
        updated, understood = _apply(ws, choices, words, request.text)
    except UserError as e:  # the question stays open: the flow's choices are kept in the re-asked step
        return PlannerReply(plan=_propose(choices, f"I could not read that as a fine-tuning choice: {e}\n\n"
                                                   + question(ws, choices)[0]))
    if pending is not None and updated == pending and not understood:
        if len(words) > 4:
            return None  # a different question in the middle of the flow: let the other intents answer it
        asked, _ = question(ws, pending)
        return PlannerReply(plan=_propose(pending, f"I did not understand `{request.text.strip()}` as an answer.\n\n"
                                                   + asked))
    return _next(ws, updated, understood)


def wants_finetune(words: list[str]) -> bool:
    joined = " ".join(words)
    return ("finetune" in joined or "fine-tun" in joined or "fine tun" in joined
            or ("train" in words and bool({"model", "llm", "assistant"} & set(words))))


def _asks_job_status(words: list[str]) -> bool:
    ws = set(words)
    return (bool(ws & _JOB_WORDS) and bool(ws & _STATUS_WORDS) and "start" not in ws
            and not ws & {"batch", "endpoint", "async", "monitor"})  # those jobs are operations' to answer


def _next(ws: Workspace, choices: FinetuneChoices, understood: list[str]) -> PlannerReply:
    heard = ("Noted: " + "; ".join(understood) + ".\n\n") if understood else ""
    try:
        asked, _ = question(ws, choices)
    except UserError as e:  # e.g. a table named that fits no training format: ask for the table again
        choices = choices.model_copy(update={"table": None})
        heard += f"{e}\n\n"
        asked, _ = question(ws, choices)
    if asked:
        return PlannerReply(plan=_propose(choices, heard + asked))
    try:
        plan_text = dry_run(ws, choices)
    except UserError as e:
        return PlannerReply(plan=_propose(choices.model_copy(update={"model": None}),
                                          f"{heard}That cannot be planned: {e}\n\n" + question(
                                              ws, choices.model_copy(update={"model": None}))[0]))
    args = {"model": choices.model, "table": choices.table, "technique": choices.technique,
            "settings": choices.settings}
    step = Step(id="s1", tool="start_finetune", args=args,
                title=f"Fine-tune `{choices.model}` with {choices.technique} on `{choices.table}`")
    summary = (f"{heard}The plan:\n{plan_text}\n\nStarting the job spends compute, so it waits for your approval "
               "(approve to start it, reject to start nothing).")
    return PlannerReply(plan=Plan(steps=[step], summary=summary))


def _propose(choices: FinetuneChoices, text: str) -> Plan:
    step = Step(id="s1", tool="propose_finetune", args=choices.model_dump(), title="Fine-tuning: next choice")
    return Plan(steps=[step], summary=text)


def _pending(history: list[Turn]) -> FinetuneChoices | None:
    """The choices of the guided flow still open in the thread: the last answer's `propose_finetune` step."""
    last = next((t for t in reversed(history) if t.role == "assistant"), None)
    if last is None or last.plan is None:
        return None
    step = next((s for s in last.plan.steps if s.tool == "propose_finetune"), None)
    return FinetuneChoices.model_validate(step.args) if step is not None else None


def _apply(ws: Workspace, choices: FinetuneChoices, words: list[str], text: str) -> tuple[FinetuneChoices, list[str]]:
    """The choices with what the message says: a number answers the open question; names and `key=value`
    settings fill any slot."""
    from runtimes.training.jobs.trainer_factory import parse_assignments

    update: dict[str, Any] = {}
    said: list[str] = []
    slot = choices.missing()
    numbers = [w for w in words if w.isdigit()]
    if slot is not None and len(numbers) == 1 and len(words) <= 4:
        _, options = question(ws, choices)
        n = int(numbers[0])
        if not 1 <= n <= len(options):
            raise UserError(f"there is no option {n}: answer with 1 to {len(options)} or a name")
        update[slot] = options[n - 1]
    lowered = set(words)
    if "technique" not in update:
        found = [_TECHNIQUE_NAMES[w] for w in words if w in _TECHNIQUE_NAMES]
        if found:
            update["technique"] = found[0]
    if "model" not in update:
        found = [m.name for m in model_options(ws) if m.name.lower() in lowered]
        if found:
            update["model"] = found[0]
    if "table" not in update:
        tables = _table_names(ws)
        found = [t for t in tables if t.lower() in lowered]
        if found:
            update["table"] = found[0]
    assignments = [w for w in text.split() if "=" in w]
    if assignments:
        update["settings"] = {**choices.settings, **parse_assignments([a.strip(_PUNCTUATION) for a in assignments])}
    for key in ("table", "technique", "model"):
        if key in update and update[key] != getattr(choices, key):
            said.append(f"{key} `{update[key]}`")
    if "settings" in update:
        said.append("settings " + ", ".join(f"{k}={v}" for k, v in update["settings"].items()))
    if "technique" in update and update["technique"] not in TECHNIQUES:
        raise UserError(f"no technique `{update['technique']}`; choose sft, dpo, rlvr or rlaif")
    return choices.model_copy(update=update), said


def _table_names(ws: Workspace) -> list[str]:
    from catalog.store import CatalogStore

    return sorted(CatalogStore(ws).load().tables)


def _words(text: str) -> list[str]:
    return [w.strip(_PUNCTUATION).lower() for w in text.split() if w.strip(_PUNCTUATION)]


"""The offline planner's guided fine-tuning: one decision per turn (table and columns, technique, base model),
then the plan with its estimate and a `start_finetune` step that waits for approval; "how is the job doing?"
answers from `job_status`. The answers so far live in the thread history, as the last `propose_finetune` step.

It proposes plans only: it never starts a job, and never skips the approval a compute step needs.
"""
from __future__ import annotations

import re
from typing import Any

from core.errors import UserError
from core.workspace import Workspace
from agent.planners.base import PlannerReply, PlanRequest
from agent.planners.train_intents import CHURN_WORDS, PREDICT_WORDS
from agent.state import Plan, Step, Turn
from runtimes.training.recipes import TECHNIQUES_IN_WORDS
from tools.finetune import TECHNIQUES, FinetuneChoices, data_choice, dry_run, model_options, \
    question

_PUNCTUATION = ",.;:!?\"'`()[]{}"
_STATUS_WORDS = frozenset({"how", "status", "progress", "doing", "going", "done", "finished", "report", "evaluation"})
_JOB_WORDS = frozenset({"job", "training", "run", "finetune", "fine-tune", "fine-tuning"})
_TECHNIQUE_NAMES = {**{t: t for t in TECHNIQUES}, "grpo": "rlvr"}


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
    except NoSuchTable as e:  # said plainly, not turned into a question about which table to use
        return PlannerReply(text=f"{str(e)[0].upper()}{str(e)[1:]} Name a catalog table in your request, or "
                                 "import the data first (`lathe catalog import FILE`).")
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
            or ("train" in words and bool({"model", "llm", "assistant"} & set(words))
                and not set(words) & _TABULAR_WORDS))


# Words of a model that predicts from tables ("train a model to predict churn"): the `train` kind's, not fine-tuning's.
_TABULAR_WORDS = PREDICT_WORDS | CHURN_WORDS | {"classifier", "classification", "regression", "regressor"}


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
    data = {"sql": choices.sql} if choices.sql else {"table": choices.table}
    args = {"model": choices.model, **data, "technique": choices.technique,
            "settings": choices.settings, **({"mapping": choices.mapping} if choices.mapping else {})}
    step = Step(id="s1", tool="start_finetune", args=args,
                title=f"Fine-tune `{choices.model}` with {choices.technique} on "
                      + ("the suggested query" if choices.sql else f"`{choices.table}`"))
    query = (f"\nData query (read-only, checked by the SQL guard when the job reads it):\n{choices.sql}"
             if choices.sql else "")
    summary = (f"{heard}The plan:\n{plan_text}{query}\n\nStarting the job spends compute, so it waits for your "
               "approval (approve to start it, reject to start nothing).")
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
    update: dict[str, Any] = {}
    said: list[str] = []
    slot = choices.missing()
    numbers = [w for w in words if w.isdigit()]
    if slot is not None and len(numbers) == 1 and len(words) <= 4:
        _, options = question(ws, choices)
        n = int(numbers[0])
        if not 1 <= n <= len(options):
            raise UserError(f"there is no option {n}: answer with 1 to {len(options)} or a name")
        if slot == "judge":
            update["settings"] = {**choices.settings, "judge_model": options[n - 1]}
        elif slot == "table":  # a table, or a suggested query with its column mapping
            update.update(data_choice(ws, choices.goal, options[n - 1]))
        else:
            update[slot] = options[n - 1]
    lowered = set(words)
    if "technique" not in update:
        found = [_TECHNIQUE_NAMES[w] for w in words if w in _TECHNIQUE_NAMES]
        if found:
            update["technique"] = found[0]
    models = model_options(ws)
    if "model" not in update:
        found = [m.name for m in models if m.name.lower() in lowered]
        if found:
            update["model"] = found[0]
        elif choices.model is None and (family := family_model(ws, words, [m.name for m in models])):
            update["model"], heard_as = family
            said.append(f"model `{update['model']}` (the local {heard_as} model)")
        elif choices.model is None and (title := _family_said(words)):
            said.append(f"no local {title} model is in this workspace (give a model folder or hub id, or choose "
                        "a local model)")
    tables = _table_names(ws)
    if "table" not in update and "sql" not in update:
        found = [t for t in tables if t.lower() in lowered]
        if found:
            update["table"] = found[0]
        elif (named := _named_table(words, text)) is not None and choices.table is None and choices.sql is None:
            hint = _did_you_mean(named, tables)
            raise NoSuchTable(f"there is no table `{named}`; {hint}" + ("" if hint.endswith("?") else "."))
    stated = stated_settings(text)
    local_judge = next((w for w in text.split() if w.strip(_PUNCTUATION).startswith("lathe/")), None)
    if local_judge and "judge_model" not in stated:
        stated["judge_model"] = local_judge.strip(_PUNCTUATION)
    if stated:
        update["settings"] = {**update.get("settings", choices.settings), **stated}
    mapping = stated_mapping(text)
    if mapping:
        update["mapping"] = {**(choices.mapping or {}), **mapping}
        said.append("columns " + ", ".join(f"{role} ← {col}" for role, col in update["mapping"].items()))
    for key in ("table", "technique", "model"):
        if key in update and update[key] != getattr(choices, key) and not any(x.startswith(f"{key} ") for x in said):
            said.append(f"{key} `{update[key]}`")
    if update.get("sql"):
        said.append("data: the suggested query")
    if "settings" in update:
        said.append("settings " + ", ".join(f"{k}={v}" for k, v in update["settings"].items()))
    if "technique" in update and update["technique"] not in TECHNIQUES:
        raise UserError(f"no technique `{update['technique']}`; choose {TECHNIQUES_IN_WORDS}")
    return choices.model_copy(update=update), said


class NoSuchTable(UserError):
    """The message names a table the catalog does not have."""


# How people name settings in a sentence, and the setting each means.
_SETTING_WORDS: dict[str, str] = {
    "epoch": "epochs", "epochs": "epochs", "lr": "learning_rate", "learning_rate": "learning_rate",
    "learning rate": "learning_rate", "step": "max_steps", "steps": "max_steps", "max_steps": "max_steps",
    "max steps": "max_steps", "batch size": "micro_batch", "batch_size": "micro_batch", "micro_batch": "micro_batch",
    "micro batch": "micro_batch", "seed": "seed", "rank": "lora_rank", "lora rank": "lora_rank",
    "lora_rank": "lora_rank", "max length": "max_length", "max_length": "max_length",
    "gradient accumulation": "gradient_accumulation", "gradient_accumulation": "gradient_accumulation"}
_NUMBER = r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)"
_KEYS = "|".join(sorted((re.escape(k) for k in _SETTING_WORDS), key=len, reverse=True))
_KEY_THEN_NUMBER = re.compile(rf"\b({_KEYS})\s*(?:=|:|of|is|to)?\s*{_NUMBER}(?![\w.])", re.I)
_NUMBER_THEN_KEY = re.compile(rf"(?<![\w.=]){_NUMBER}\s+({_KEYS})\b", re.I)
_USE_COLUMN = re.compile(r"\buse\s+(?:the\s+)?column\s+`?(\w+)`?\s+as\s+(?:the\s+)?(prompt|completion|reply|"
                         r"response|answer|chosen|rejected|system|question|instruction|output)\b", re.I)
_ROLE_WORDS = {"reply": "completion", "response": "completion", "answer": "completion"}


def stated_settings(text: str) -> dict[str, Any]:
    """Settings a message states, in `key=value` form or in words ("2 epochs, lr 1e-4", "learning rate of 3e-5"),
    each under its setting's name; the values are checked by the plan, which refuses one out of range."""
    import json

    from runtimes.training.jobs.trainer_factory import parse_assignments

    out: dict[str, Any] = {}
    for match in _KEY_THEN_NUMBER.finditer(text):
        out[_SETTING_WORDS[match.group(1).lower()]] = json.loads(match.group(2))
    for match in _NUMBER_THEN_KEY.finditer(text):
        out[_SETTING_WORDS[match.group(2).lower()]] = json.loads(match.group(1))
    assignments = [w.strip(_PUNCTUATION) for w in text.split() if "=" in w]
    for key, value in parse_assignments(assignments).items():
        out[_SETTING_WORDS.get(key.lower(), key)] = value
    return out


def stated_mapping(text: str) -> dict[str, str]:
    """"use column question as the prompt" → {"prompt": "question"}."""
    return {_ROLE_WORDS.get(role.lower(), role.lower()): column for column, role in _USE_COLUMN.findall(text)}


def family_model(ws: Workspace, words: list[str], names: list[str]) -> tuple[str, str] | None:
    """The local model of the family a message names the way people say it ("llama 3", "qwen", "deepseek"):
    (model name, the family as heard); None when it names none, or several local models fit."""
    from runtimes.models.sources import resolve_model

    said: list[str] = []
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        said.append(w + nxt if nxt.replace(".", "").isdigit() and w.isalpha() else w)
    families: dict[str, set[str]] = {}
    for name in names:
        try:
            family = resolve_model(name, ws).family
        except UserError:
            continue
        families[name] = {_squash(family.name), _squash(family.title), re.match(r"[a-z]+", family.name).group(0)}
    for heard in said:
        key = _squash(heard)
        if len(key) < 4:
            continue
        fits = [n for n, keys in families.items() if key in keys or any(k.startswith(key) and key.isalpha()
                                                                         for k in keys)]
        if len(fits) == 1:
            return fits[0], heard
    return None


def _family_said(words: list[str]) -> str | None:
    """The title of a model family the words name ("deepseek" → DeepSeek V2), whether or not a local model has it."""
    from runtimes.models.families import FAMILIES

    said = {_squash(w) for w in words} | {_squash(a + b) for a, b in zip(words, words[1:])}
    for fam in FAMILIES:
        keys = {_squash(fam.name), _squash(fam.title), re.match(r"[a-z]+", fam.name).group(0)}
        if said & keys:
            return fam.title
    return None


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _named_table(words: list[str], text: str) -> str | None:
    """A table the message names that looks like one (after "on", "from" or "table", with `_` or digits)."""
    for i, w in enumerate(words[1:], 1):
        if words[i - 1] in ("on", "from", "table", "using") and re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", w):
            return w
    return None


def _did_you_mean(name: str, tables: list[str]) -> str:
    from catalog.suggestions import close_matches

    hits = close_matches(name, tables) or [t for t in tables if set(name.split("_")) & set(t.split("_"))]
    if hits:
        return "did you mean " + " or ".join(f"`{h}`" for h in hits[:3]) + "?"
    return "the catalog has " + ", ".join(f"`{t}`" for t in tables[:8]) if tables else "the catalog has no tables"


def _table_names(ws: Workspace) -> list[str]:
    from catalog.store import CatalogStore

    return sorted(CatalogStore(ws).load().tables)


def _words(text: str) -> list[str]:
    return [w.strip(_PUNCTUATION).lower() for w in text.split() if w.strip(_PUNCTUATION)]


"""Tools for fine-tuning from the chat: propose a dataset, technique and base model with reasons and a dry-run
plan; start the job (risk `compute`); report a job's progress and evaluation; list and approve model versions.

Thin wrappers over `runtimes/training/`: proposing reads the catalog and warehouse and starts nothing; only
`start_finetune` spends compute and only `approve_model_version` changes the registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from core.errors import UserError
from core.principal import APPROVER, may_approve
from catalog.results import QueryResult
from core.workspace import Workspace
from runtimes.training.jobs.spec import JobSpec
from runtimes.training.recipes import TECHNIQUES, Technique
from tools.base import LatheTool, ToolArgs, ToolOutput, open_choice_fields
from tools.risk import Risk

SAMPLE_ROWS = 50

# Why each technique suits data of a kind: shown with every proposal.
TECHNIQUE_REASONS = {
    "dpo": "preference pairs (a better and a worse reply to one prompt): DPO teaches the model to prefer the better one",
    "rlvr": "questions with a verifiable answer: RLVR rewards replies whose answer checks out",
    "rlaif": "only a rubric, no reference replies: RLAIF lets an LLM judge score replies against it (needs a judge model)",
    "sft": "demonstrations (a prompt and a good reply): SFT teaches the model to answer like them",
}


# ---- proposing: what the guided conversation offers ---------------------------------------------------
@dataclass(frozen=True)
class TableOption:
    name: str
    rows: int | None
    mapping: Any  # runtimes.training.datasets.formats.ColumnMapping
    technique: str
    score: int
    sql: str | None = None    # a suggested read query (a join of tables) rather than one table
    about: str | None = None  # what the query reads, its rows and mapping, in words

    def line(self) -> str:
        rows = f"{self.rows:,} rows, " if self.rows is not None else ""
        about = self.about or f"{rows}{self.mapping.describe()}"
        return f"`{self.name}` ({about}) → {self.technique}: {TECHNIQUE_REASONS[self.technique]}"


@dataclass(frozen=True)
class ModelOption:
    name: str
    note: str

    def line(self) -> str:
        return f"`{self.name}`" + (f" ({self.note})" if self.note else "")


def recommended_technique(fmt: str, goal: str = "") -> str:
    """The technique a data format calls for: preference pairs → DPO, verifiable answers → RLVR, only a rubric
    (the user says so) → RLAIF, demonstrations → SFT."""
    words = set(_words(goal))
    if words & {"rubric", "judge", "rlaif"}:
        return "rlaif"
    if fmt in ("preference", "hh_rlhf"):
        return "dpo"
    if fmt == "question_answer":
        return "rlvr"
    return "sft"


def technique_options(fmt: str, goal: str = "") -> list[str]:
    """Techniques the format can train, the recommended one first."""
    from runtimes.training.datasets.formats import ColumnMapping, DatasetFormat
    from runtimes.training.datasets.validation import check_fit

    mapping = ColumnMapping(format=DatasetFormat(fmt), columns={})
    fits = []
    for t in TECHNIQUES:
        try:
            check_fit(mapping, t)
        except UserError:
            continue
        fits.append(t)
    first = recommended_technique(fmt, goal)
    return [first, *[t for t in fits if t != first]] if first in fits else fits


def table_options(ws: Workspace, goal: str = "") -> list[TableOption]:
    """Catalog tables whose columns fit a training format, the ones the goal's words describe best first; when the
    goal asks for the best examples, joins of messages with their best-scored answers come before them."""
    from sqlglot import exp

    from catalog.store import CatalogStore
    from catalog.warehouse import connect_reader
    from runtimes.training.datasets.formats import detect_mapping

    catalog = CatalogStore(ws).load()
    wanted = set(_words(goal))
    found: list[TableOption] = []
    with connect_reader(ws) as con:
        for name, table in sorted(catalog.tables.items()):
            query = exp.select(exp.Star()).from_(exp.to_table(name)).limit(SAMPLE_ROWS).sql(dialect="duckdb")
            try:
                cur = con.execute(query)
                columns = [d[0] for d in cur.description]
                rows = [list(r) for r in cur.fetchall()]
            except Exception:  # duckdb.Error: a catalogued table missing from the warehouse is not a candidate
                continue
            try:
                mapping = detect_mapping(columns, rows)
            except UserError:
                continue
            text = " ".join([name, table.description, *columns])
            score = len(wanted & set(_words(text)))
            found.append(TableOption(name, table.row_count, mapping,
                                     recommended_technique(mapping.format.value, goal), score))
    found.sort(key=lambda o: (-o.score, o.name))
    return _best_answer_joins(ws, catalog, goal) + found


def _best_answer_joins(ws: Workspace, catalog: Any, goal: str) -> list[TableOption]:
    from runtimes.training.data_suggestions import asks_for_the_best, scored_answer_joins
    from runtimes.training.datasets.formats import ColumnMapping, DatasetFormat

    wanted = set(_words(goal))
    if not asks_for_the_best(wanted):
        return []
    options = []
    for s in scored_answer_joins(ws, catalog):
        tables = [catalog.tables[s.prompt_table], catalog.tables[s.completion_table]]
        text = " ".join(" ".join([t.name, t.description, *t.synonyms]) for t in tables)
        mapping = ColumnMapping(format=DatasetFormat.prompt_completion, columns=dict(QUERY_MAPPING))
        options.append(TableOption(s.name, s.rows, mapping, recommended_technique("prompt_completion", goal),
                                   len(wanted & set(_words(text))), sql=s.sql, about=s.describe()))
    return sorted(options, key=lambda o: (-o.score, o.name))


# The columns a suggested query names its message and answer.
QUERY_MAPPING = {"prompt": "prompt", "completion": "completion"}


def data_choice(ws: Workspace, goal: str, name: str) -> dict[str, Any]:
    """The choice an offered data option makes: its table, or its query with the query's column mapping."""
    option = next((o for o in table_options(ws, goal) if o.name == name and o.sql), None)
    if option is None:
        return {"table": name}
    return {"sql": option.sql, "mapping": dict(QUERY_MAPPING)}


def model_options(ws: Workspace, goal: str = "") -> list[ModelOption]:
    """The workspace's local base models (those the goal names first); the demo's tiny ones say what they are for."""
    from runtimes.training.tiny_models import DEMO_MODELS

    names: list[str] = []
    for folder in (ws.root / "models" / "base", ws.root / "models"):
        if folder.is_dir():
            names += [p.name for p in sorted(folder.iterdir())
                      if (p / "config.json").exists() and p.name not in names and not p.name.startswith(".")]
    wanted = set(_words(goal))

    def named(n: str) -> bool:
        return any(w in n.lower() for w in wanted if len(w) > 2)

    names.sort(key=lambda n: (not named(n), n))
    return [ModelOption(n, "demo model with random weights: for trying the pipeline, not for quality"
                        if n in DEMO_MODELS else "local") for n in names]


class _Choices(ToolArgs):
    """What the user has decided so far; the guided conversation fills it one answer at a time."""
    goal: str = Field("", description="what the user wants the model to do, in their words")

    def missing(self) -> str | None:
        """The next decision to ask about, in the guided order; None when everything is chosen."""
        for slot in ("table", "technique", "model"):
            if getattr(self, slot) is None and not (slot == "table" and self.sql):
                return slot
        if self.technique == "rlaif" and not self.settings.get("judge_model"):
            return "judge"
        return None


# The choices are the job spec's own fields, each open until the user decides it.
FinetuneChoices = create_model("FinetuneChoices", __base__=_Choices, __module__=__name__,
                               **open_choice_fields(JobSpec, ("table", "sql", "technique", "model", "settings",
                                                              "mapping")))


_PLANS: dict[tuple[str, str, float], Any] = {}  # one plan per request and warehouse state: planning reads every row


def approved_plan(ws: Workspace, choices: FinetuneChoices) -> Any:
    """The `FinetunePlan` shown for approval of these choices (see `plan_of`)."""
    return plan_of(ws, JobSpec.parse({"model": choices.model, "table": choices.table, "sql": choices.sql,
                                      "technique": choices.technique, "settings": choices.settings,
                                      "mapping": choices.mapping}))


def plan_of(ws: Workspace, spec: JobSpec) -> Any:
    """The `FinetunePlan` of one job spec, once per spec and warehouse state: the approval shows it, and the job
    started from the same spec stores and runs this very plan."""
    from runtimes.training.planning import plan_finetune

    key = (str(ws.root), spec.model_dump_json(),
           ws.warehouse_path.stat().st_mtime if ws.warehouse_path.exists() else 0.0)
    if key not in _PLANS:
        _PLANS[key] = plan_finetune(ws, spec)
    return _PLANS[key]


def dry_run(ws: Workspace, choices: FinetuneChoices) -> str:
    """The plan in plain words with its estimate, as `lathe finetune --dry-run` shows it; starts nothing."""
    return str(approved_plan(ws, choices).explain())


def spec_dry_run(ws: Workspace, spec: JobSpec) -> str:
    return str(plan_of(ws, spec).explain())


def question(ws: Workspace, choices: FinetuneChoices) -> tuple[str, list[str]]:
    """The next question in words and its options (names, in the order they are numbered); ('', []) when
    every decision is made."""
    slot = choices.missing()
    if slot == "table":
        options = table_options(ws, choices.goal)
        if not options:
            raise UserError("no catalog table fits a training format (messages, prompt/completion, "
                            "prompt/chosen/rejected, question/answer, …): import one, then ask again")
        lines = [f"{i}. {o.line()}" for i, o in enumerate(options, 1)]
        return ("Which table should it learn from? Proposed from the catalog:\n" + "\n".join(lines)
                + "\nAnswer with a number or a name.", [o.name for o in options])
    if slot == "technique":
        fmt = _table_format(ws, choices.table or "", choices.mapping)
        options = technique_options(fmt, choices.goal)
        lines = [f"{i}. {t}{' (recommended)' if i == 1 else ''}: {TECHNIQUE_REASONS[t]}"
                 for i, t in enumerate(options, 1)]
        data = f"`{choices.table}`" if choices.table else "The query"
        return (f"Which technique? {data} is {fmt} data.\n" + "\n".join(lines)
                + "\nAnswer with a number or a name.", options)
    if slot == "model":
        models = model_options(ws, choices.goal)
        if not models:
            return ("Which base model? This workspace has no local model: name a hub id or a folder "
                    "(`lathe init --demo` installs tiny ones for trying the pipeline).", [])
        lines = [f"{i}. {m.line()}" for i, m in enumerate(models, 1)]
        return ("Which base model? The workspace's local models:\n" + "\n".join(lines)
                + "\nAnswer with a number or a name.", [m.name for m in models])
    if slot == "judge":
        from runtimes.judging.judge import LOCAL_PREFIX, running_endpoints

        local = [f"{LOCAL_PREFIX}{e.name}" for e in running_endpoints(ws)]
        lines = [f"{i}. `{name}`: an endpoint running on this machine (no hosted LLM needed)"
                 for i, name in enumerate(local, 1)]
        return ("Which judge should score the replies? RLAIF needs an LLM judge."
                + ("\n" + "\n".join(lines) + "\nAnswer with a number, or" if lines else
                   " No Lathe endpoint is running here (`lathe deploy MODEL` starts one, then answer `lathe/NAME`);")
                + " give a LiteLLM model name, e.g. judge_model=openai/gpt-4o-mini judge_api_base=URL.", local)
    return "", []


def _table_format(ws: Workspace, table: str, mapping: dict[str, str] | None = None) -> str:
    if mapping:
        from runtimes.training.datasets.formats import format_of_roles

        return format_of_roles(set(mapping)).value
    for o in table_options(ws):
        if o.name == table:
            return o.mapping.format.value
    from catalog.suggestions import unknown

    raise UserError(unknown("table that fits a training format", table, [o.name for o in table_options(ws)]))


def _words(text: str) -> list[str]:
    out, word = [], []
    for ch in text.lower() + " ":
        if ch.isalnum():
            word.append(ch)
        elif word:
            w = "".join(word)
            out.append(w[:-1] if w.endswith("s") and len(w) > 3 else w)  # "tickets" finds "ticket"
            word = []
    return out


# ---- the tools ----------------------------------------------------------------------------------------
class ProposeFinetune(LatheTool):
    name: str = "propose_finetune"
    description: str = ("Propose a fine-tuning job: candidate catalog tables with their column mapping, the technique "
                        "their data calls for and why, the local base models, and once table, technique and model are "
                        "chosen the dry-run plan with its estimate. Starts nothing.")
    args_schema: type[BaseModel] = FinetuneChoices
    risk = Risk.read

    def _run(self, **args: Any) -> ToolOutput:
        choices = FinetuneChoices(**args)
        asked, options = question(self.workspace, choices)
        if asked:
            return ToolOutput(text=asked, data={"choices": choices.model_dump(), "asks": choices.missing(),
                                                "options": options})
        plan = dry_run(self.workspace, choices)
        return ToolOutput(text="The plan:\n" + plan, data={"choices": choices.model_dump(), "plan": plan})


class StartFinetuneArgs(JobSpec, ToolArgs):
    """A fine-tuning job's spec, field for field."""


class StartFinetune(LatheTool):
    name: str = "start_finetune"
    description: str = ("Start a fine-tuning job (spends compute, so it waits for approval): base model, catalog "
                        "table (or a read query), technique and optional setting overrides. Follow it with "
                        "`job_status`.")
    args_schema: type[BaseModel] = StartFinetuneArgs
    risk = Risk.compute

    def estimate(self, args: BaseModel) -> str:
        try:
            plan = spec_dry_run(self.workspace, JobSpec.parse(args.model_dump()))
        except UserError as e:
            return f"cannot estimate: {e}"
        wanted = ("Duration", "estimate", "Memory")
        return "; ".join(line.strip() for line in plan.splitlines() if line.startswith(wanted)) or plan.splitlines()[0]

    def _run(self, **args: Any) -> ToolOutput:
        from runtimes.jobs.lifecycle import submit
        from runtimes.training.jobs.finetune_kind import planned

        spec = JobSpec.parse(args)
        job = submit(self.workspace, "finetune", planned=planned(plan_of(self.workspace, spec)))  # as approved
        on = f"`{spec.table}`" if spec.table else "the approved query"
        return ToolOutput(text=f"started job {job.id} ({job.status}): {spec.technique} of `{spec.model}` on {on}; "
                               "ask \"how is the job doing?\" to follow it",
                          data={"job_id": job.id, "kind": job.kind, "status": job.status})


class ListModelsArgs(ToolArgs):
    name: str | None = Field(None, description="only the versions of this registered model")


class ListModels(LatheTool):
    name: str = "list_models"
    description: str = "List the workspace's base models and the registered fine-tuned model versions with their approval."
    args_schema: type[BaseModel] = ListModelsArgs
    risk = Risk.read

    def _run(self, name: str | None = None) -> ToolOutput:
        from runtimes.models.registry import list_versions

        rows: list[list[Any]] = [] if name else [[m.name, "", "base", m.note] for m in model_options(self.workspace)]
        versions = list_versions(self.workspace, name)
        rows += [[v.name, v.version, v.approval, f"job {v.lineage.get('job_id', '?')}"] for v in versions]
        result = QueryResult(sql="", columns=["model", "version", "status", "about"], rows=rows)
        text = (f"{len(rows) - len(versions)} base models, {len(versions)} registered versions: "
                + ", ".join(f"`{r[0]}`" + (f" v{r[1]} ({r[2]})" if r[1] else "") for r in rows)) if rows else "no models yet"
        return ToolOutput(text=text, result=result)


class ApproveModelVersionArgs(ToolArgs):
    name: str = Field(..., min_length=1, description="the registered model's name")
    version: str = Field(..., min_length=1, description="its version number")
    decision: Literal["approved", "rejected"] = "approved"
    note: str = ""


class ApproveModelVersion(LatheTool):
    name: str = "approve_model_version"
    description: str = "Approve (or reject) a pending registered model version; approvers only."
    args_schema: type[BaseModel] = ApproveModelVersionArgs
    risk = Risk.write

    def _run(self, name: str, version: str, decision: str = "approved", note: str = "") -> ToolOutput:
        from tools.base import principal_or_local
        from runtimes.models.registry import decide

        who = principal_or_local(self.principal)
        if not may_approve(getattr(who, "roles", ())):
            raise UserError(f"`{who.name}` may not decide on model versions: that needs the `{APPROVER}` role")
        v = decide(self.workspace, name, version, decision, who.name, note)  # type: ignore[arg-type]
        return ToolOutput(text=f"`{v.name}` version {v.version} is {v.approval} by {who.name}", data=v.to_json())

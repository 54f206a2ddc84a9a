"""The offline planner: the agent's embedded default when no LLM is configured. Deterministic reading of
catalog questions, metric questions (through the semantic layer), follow-ups on the thread's last query,
derived tables, guided fine-tuning (`finetune_intents.py`), endpoints, batch, async and monitors
(`operations_intents.py`) and help, that says plainly what it understood and what it did not.

It proposes plans and replies only: it never runs a tool, never decides about approval, and never
writes SQL by hand (metric SQL comes from the semantic layer's compiler, the rest from sqlglot trees).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from catalog.errors import UserError
from catalog.metadata import Catalog
from agent.planners.base import Emit, PlannerDeps, PlannerReply, PlanRequest
from agent.planners.catalog_answers import (definition_text, help_text, lineage_text, owners_text, pii_text,
                                             short_examples)
from agent.planners.direct_sql import DirectSqlPlanner
from agent.planners.fallback import FallbackPlanner
from agent.planners.finetune_intents import plan_finetune_turn
from agent.planners.operations_intents import plan_operations_turn
from agent.planners.follow_ups import changes_something, describe, merge, previous_query, sounds_like_follow_up
from agent.planners.intents import Intent, read_intent
from agent.planners.metric_matching import build_vocabulary
from agent.planners.metric_questions import MetricQuestionReader, Unclear
from agent.planners.question_words import Token, quoted, tokenize
from agent.planners.semantic_names import SemanticNames
from agent.planners.value_filters import DimensionValues
from agent.state import Plan, Step

Clock = Callable[[], dt.date]
MAX_NAME = 63


def create_planner(deps: PlannerDeps, clock: Clock | None = None) -> "OfflinePlanner":
    """The offline planner for a session; `clock` gives today's date (tests fix it)."""
    return OfflinePlanner(deps, clock or dt.date.today)


class OfflinePlanner:
    name = "offline"
    reads_sql_first = True  # sees typed SQL first: a guided answer ("use reply_preferences") parses as SQL too

    def __init__(self, deps: PlannerDeps, clock: Clock):
        self.deps = deps
        self.clock = clock
        self._values = DimensionValues(deps.workspace)  # distinct values, read once per session
        self._built_for: Catalog | None = None
        self._reader: MetricQuestionReader | None = None
        self._names: SemanticNames | None = None

    # ---- the seam ---------------------------------------------------------------------------
    def plan(self, request: PlanRequest, emit: Emit) -> PlannerReply:
        if request.failure is not None:  # nothing to correct without an LLM: say what failed
            if request.failure.tool == "run_sql":
                return FallbackPlanner().plan(request, emit)
            return PlannerReply(text=f"`{request.failure.tool}` failed: {request.failure.error}\nWithout an LLM I "
                                     "cannot correct it: rephrase the question, or ask \"help\" for examples.")
        # Before SQL: a guided answer such as "use reply_preferences" also parses as a SQL `USE`.
        guided = plan_finetune_turn(self.deps.workspace, request)
        if guided is not None:
            return guided
        operations = plan_operations_turn(self.deps.workspace, request)
        if operations is not None:
            return operations
        if request.route == "sql":
            return DirectSqlPlanner().plan(request, emit)
        catalog = self.deps.catalog.catalog
        reader, names = self._parts(catalog)
        tokens = tokenize(request.text)
        intent = read_intent(request.text, tokens, catalog)
        if intent.kind == "help":
            return PlannerReply(text=help_text(catalog, names, self._values.of(catalog)))
        if intent.kind == "owners":
            return PlannerReply(text=owners_text(catalog, intent.table, intent.term))
        if intent.kind == "define":
            return PlannerReply(text=definition_text(catalog, intent.term, intent.metric))
        if intent.kind == "pii":
            return PlannerReply(text=pii_text(catalog, intent.table))
        if intent.kind == "lineage":
            return PlannerReply(text=lineage_text(catalog, intent.table, intent.column))
        if intent.kind in ("list_tables", "list_metrics", "describe", "search", "row_count"):
            return PlannerReply(plan=_catalog_plan(intent))
        if intent.kind == "derived":
            return self._derived(request, tokens, intent, reader, names, catalog)
        return self._metric(request, tokens, reader, names)

    # ---- metric questions -----------------------------------------------------------------------
    def _read(self, request: PlanRequest, tokens: list[Token], reader: MetricQuestionReader, names: SemanticNames,
              skip: set[int] | None = None, reuse: bool = False) -> tuple[dict[str, Any], str] | str:
        """The query's arguments and what was understood, or a reply in words. With `reuse`, a question
        that changes nothing takes the last query as it is ("save that as a table")."""
        previous = previous_query(request.history)
        cue = sounds_like_follow_up(tokens)
        ask = reader.read(tokens, self.clock(), skip=skip,
                          fallback_metrics=list(previous["metrics"]) if previous else None, follow_up=cue)
        if isinstance(ask, Unclear):
            return self._not_understood(tokens, reader, ask) if ask.no_metric else ask.text
        if previous is not None and (not ask.named_metrics or cue):
            if not changes_something(ask) and not reuse:
                return self._not_understood(tokens, reader, None)
            args, notes = merge(previous, ask, names, tokens)
            said = "Changing the last query: " + describe(args) + "."
            extra = ask.notes + notes + ([f"time: {ask.time.describe()}"] if ask.time.has_range else [])
            if extra:
                said += " (" + "; ".join(extra) + ".)"
            if ask.left_out:
                said += f" I did not understand {quoted(ask.left_out)} and left it out."
            return args, said
        return ask.args(), ask.summary()

    def _metric(self, request: PlanRequest, tokens: list[Token], reader: MetricQuestionReader,
                names: SemanticNames) -> PlannerReply:
        read = self._read(request, tokens, reader, names)
        if isinstance(read, str):
            return PlannerReply(text=read)
        args, said = read
        step = Step(id="s1", tool="query_metrics", args=args, title=_title(args))
        return PlannerReply(plan=Plan(steps=[step], summary=said))

    def _derived(self, request: PlanRequest, tokens: list[Token], intent: Intent, reader: MetricQuestionReader,
                 names: SemanticNames, catalog: Catalog) -> PlannerReply:
        read = self._read(request, tokens, reader, names, skip=intent.used, reuse=True)
        if isinstance(read, str):
            return PlannerReply(text=read)
        args, said = read
        from catalog.semantic.query import MetricQuery
        from catalog.semantic.runner import compile_for_workspace

        try:
            compiled = compile_for_workspace(self.deps.workspace, MetricQuery(**args))
        except UserError as e:
            return PlannerReply(text=f"{said}\n\nThat query cannot be compiled: {e}")
        if intent.name and catalog.table(intent.name) is not None:
            return PlannerReply(text=f"A table `{intent.name}` exists already: ask again with another name "
                                     "(\"… called new_name\").")
        name = intent.name or _free_name(_slug(args), catalog)
        step = Step(id="s1", tool="create_derived_table", title=f"Create table `{name}` ({_title(args)})",
                    args={"name": name, "select_sql": compiled.sql,
                          "description": f"{_title(args)}; created from the question: {request.text.strip()}"})
        summary = (f"{said} I will create table `{name}` from that query; it changes the warehouse, so it waits "
                   "for approval.")
        return PlannerReply(plan=Plan(steps=[step], summary=summary))

    def _not_understood(self, tokens: list[Token], reader: MetricQuestionReader, unclear: Unclear | None) -> str:
        understood, unknown = reader.explain(tokens, self.clock())
        parts = ["I could not turn this into a query."]
        if understood:
            parts.append("I understood " + "; ".join(understood) + ".")
        if unknown:
            parts.append(f"I did not understand {quoted(unknown)}.")
        if unclear is not None and unclear.text:
            parts.append(unclear.text[0].upper() + unclear.text[1:])
        elif not any("metric" in u for u in understood):
            parts.append("I found no metric in it.")
        catalog = self.deps.catalog.catalog
        parts.append(short_examples(catalog, reader.names, self._values.of(catalog)))
        return " ".join(parts)

    # ---- per-catalog parts ------------------------------------------------------------------------
    def _parts(self, catalog: Catalog) -> tuple[MetricQuestionReader, SemanticNames]:
        if self._built_for is not catalog or self._reader is None or self._names is None:
            values = self._values.of(catalog)
            self._names = SemanticNames(catalog.semantic)
            self._reader = MetricQuestionReader(build_vocabulary(catalog, values), self._names, values)
            self._built_for = catalog
        return self._reader, self._names


def _catalog_plan(intent: Intent) -> Plan:
    if intent.kind == "list_tables":
        step = Step(id="s1", tool="list_tables", title="List the catalog's tables")
        return Plan(steps=[step], summary="Listing the tables in the catalog.")
    if intent.kind == "list_metrics":
        step = Step(id="s1", tool="list_metrics", title="List the semantic layer's metrics")
        return Plan(steps=[step], summary="Listing the metrics defined in the semantic layer.")
    if intent.kind == "describe":
        step = Step(id="s1", tool="describe_table", args={"table": intent.table}, title=f"Describe table `{intent.table}`")
        return Plan(steps=[step], summary=f"Describing table `{intent.table}` from the catalog.")
    if intent.kind == "row_count":
        from sqlglot import exp

        sql = exp.select(exp.Count(this=exp.Star()).as_("row_count")).from_(exp.to_table(intent.table)).sql(dialect="duckdb")
        step = Step(id="s1", tool="run_sql", args={"sql": sql}, title=f"Count the rows of `{intent.table}`")
        return Plan(steps=[step], summary=f"Counting the rows of table `{intent.table}`.")
    step = Step(id="s1", tool="search_catalog", args={"text": intent.text}, title=f"Search the catalog for `{intent.text}`")
    return Plan(steps=[step], summary=f"Searching the catalog for `{intent.text}`.")


def _title(args: dict[str, Any]) -> str:
    text = ", ".join(args["metrics"])
    if args.get("group_by"):
        text += " by " + ", ".join(args["group_by"])
    if args.get("limit"):
        text += f" (first {args['limit']})"
    return text


def _slug(args: dict[str, Any]) -> str:
    """A table name from the query: metrics, the values it keeps, and what it groups by."""
    from sqlglot import exp

    from catalog.semantic.where_filters import parse_filter

    words = list(args["metrics"])
    for w in args.get("where") or []:
        try:
            tree = parse_filter(w).tree
        except UserError:
            continue
        words += [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string and not _is_date(lit.this)]
    if args.get("group_by"):
        words += ["by"] + [g.split("__")[-1] for g in args["group_by"]]
    slug = "_".join("".join(c if c.isascii() and c.isalnum() else "_" for c in w.lower()) for w in words)
    slug = "_".join(p for p in slug.split("_") if p)
    if not slug or not (slug[0].isalpha() or slug[0] == "_"):
        slug = "t_" + slug
    return slug[:MAX_NAME - 3].rstrip("_")


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
        return True
    except ValueError:
        return False


def _free_name(base: str, catalog: Catalog) -> str:
    name, n = base, 2
    while catalog.table(name) is not None:
        name, n = f"{base}_{n}", n + 1
    return name

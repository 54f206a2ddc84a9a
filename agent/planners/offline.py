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

from core.errors import UserError
from catalog.metadata import Catalog
from agent.planners.base import Emit, PlannerDeps, PlannerReply, PlanRequest
from agent.planners.catalog_answers import short_examples
from agent.planners.direct_sql import DirectSqlPlanner
from agent.planners.fallback import FallbackPlanner
from agent.planners.follow_ups import changes_something, describe, merge, previous_query, sounds_like_follow_up
from agent.planners.intent_registry import Context, Question, choose, cue_words
from agent.planners.intents import Intent
from agent.planners.metric_matching import build_vocabulary
from agent.planners.metric_questions import MetricQuestionReader, Unclear
from agent.planners.question_words import Token, quoted, tokenize
from agent.planners.semantic_names import SemanticNames
from agent.planners.spelling import Lexicon, lexicon_of
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
        self._lexicon: tuple[Catalog, Lexicon] | None = None

    # ---- the seam ---------------------------------------------------------------------------
    def plan(self, request: PlanRequest, emit: Emit) -> PlannerReply:
        if request.failure is not None:  # nothing to correct without an LLM: say what failed
            if request.failure.tool == "run_sql":
                return FallbackPlanner().plan(request, emit)
            return PlannerReply(text=f"`{request.failure.tool}` failed: {request.failure.error}\nWithout an LLM I "
                                     "cannot correct it: rephrase the question, or ask \"help\" for examples.")
        context = Context(request, self.deps.catalog.catalog, self)
        reply = choose(Question.of(request.text, self.lexicon(context.catalog)), context)
        if reply is None and request.route == "sql":
            return DirectSqlPlanner().plan(request, emit)
        return reply if reply is not None else PlannerReply(text=self._not_understood(
            tokenize(request.text), self.parts(context.catalog)[0], None))

    # ---- what the kinds of question use -----------------------------------------------------------
    @property
    def values(self) -> DimensionValues:
        return self._values

    def read_metric(self, request: PlanRequest, tokens: list[Token], skip: set[int] | None = None,
                    reuse: bool = False, notes: list[str] | None = None) -> tuple[dict[str, Any], str, set[int]] | str:
        """A metric question's query arguments, what was understood and the tokens it used; or a reply.
        `notes` (spelling corrections) go with what was understood."""
        reader, names = self.parts(self.deps.catalog.catalog)
        return self._read(request, tokens, reader, names, skip=skip, reuse=reuse, notes=notes)

    def lexicon(self, catalog: Catalog) -> Lexicon:
        if self._lexicon is None or self._lexicon[0] is not catalog:
            self._lexicon = (catalog, lexicon_of(catalog, self._values.of(catalog), cue_words()))
        return self._lexicon[1]

    def metric_plan(self, args: dict[str, Any], said: str) -> PlannerReply:
        top_of = args.pop("keep_top_of", None)
        if top_of is not None:
            return self._series_of_top(args, top_of, said)
        step = Step(id="s1", tool="query_metrics", args=args, title=_title(args))
        return PlannerReply(plan=Plan(steps=[step], summary=said))

    def _series_of_top(self, args: dict[str, Any], top_of: dict[str, Any], said: str) -> PlannerReply:
        """The new query's rows for the items the last (top N) query kept, both compiled by the semantic layer."""
        from sqlglot import exp, parse_one

        from catalog.semantic.query import MetricQuery
        from catalog.semantic.runner import compile_for_workspace

        try:
            series = parse_one(compile_for_workspace(self.deps.workspace, MetricQuery(**args)).sql, dialect="duckdb")
            top = parse_one(compile_for_workspace(self.deps.workspace, MetricQuery(**top_of)).sql, dialect="duckdb")
        except UserError as e:
            return PlannerReply(text=f"{said}\n\nThat query cannot be compiled: {e}")
        dims = [g for g in top_of.get("group_by") or [] if not g.startswith("metric_time")]
        keep = exp.Tuple(expressions=[exp.column(d, "series") for d in dims]) if len(dims) > 1 else exp.column(dims[0], "series")
        inner = exp.select(*[exp.column(d, "top_n") for d in dims]).from_(exp.Subquery(this=top, alias=exp.to_identifier("top_n")))
        sql = (exp.select("*").from_(exp.Subquery(this=series, alias=exp.to_identifier("series")))
               .where(exp.In(this=keep, query=inner.subquery()))
               .order_by(*[exp.column(d, "series") for d in dims], *[exp.column(g, "series") for g in args["group_by"] if g not in dims]))
        step = Step(id="s1", tool="run_sql", args={"sql": sql.sql(dialect="duckdb")}, title=_title(args) + f" (top {top_of.get('limit')} kept)")
        return PlannerReply(plan=Plan(steps=[step], summary=said))

    # ---- metric questions -----------------------------------------------------------------------
    def _read(self, request: PlanRequest, tokens: list[Token], reader: MetricQuestionReader, names: SemanticNames,
              skip: set[int] | None = None, reuse: bool = False,
              notes: list[str] | None = None) -> tuple[dict[str, Any], str, set[int]] | str:
        """The query's arguments, what was understood and the tokens used, or a reply in words. With `reuse`,
        a question that changes nothing takes the last query as it is ("save that as a table")."""
        previous = previous_query(request.history)
        cue = sounds_like_follow_up(tokens)
        ask = reader.read(tokens, self.clock(), skip=skip,
                          fallback_metrics=list(previous["metrics"]) if previous else None, follow_up=cue)
        if isinstance(ask, Unclear):
            return self._not_understood(tokens, reader, ask) if ask.no_metric else ask.text
        used = {t.index for t in tokens if t.text not in ask.left_out}
        ask.notes[:0] = notes or []
        # A message that is only a metric's name, right after a metric answer, swaps the metric ("average order
        # value" after "value of orders by region in 2026"): the rest of the question stays.
        bare = (ask.named_metrics and not (ask.group_by or ask.grain or ask.time.has_range or ask.filters or ask.top
                                           or ask.left_out) and all(t.is_filler or t.index in used for t in tokens)
                and not any(t.low in ("how", "many", "much", "total", "number", "count") for t in tokens))
        if previous is not None and (not ask.named_metrics or cue or bare):
            if not changes_something(ask) and not reuse:
                return self._not_understood(tokens, reader, None)
            args, notes = merge(previous, ask, names, tokens)
            if any(n.startswith("kept the top") for n in notes):
                args["keep_top_of"] = previous  # "now split that by month" after a top N: the same N items
            said = "Changing the last query: " + describe(args) + "."
            extra = ask.notes + notes + ([f"time: {ask.time.describe()}"] if ask.time.has_range else [])
            if extra:
                said += " (" + "; ".join(extra) + ".)"
            if ask.left_out:
                said += f" I did not understand {quoted(ask.left_out)} and left it out."
            return args, said, used
        return ask.args(), ask.summary(), used

    def derived_plan(self, request: PlanRequest, intent: Intent) -> PlannerReply:
        catalog = self.deps.catalog.catalog
        reader, names = self.parts(catalog)
        tokens = tokenize(request.text)
        read = self._read(request, tokens, reader, names, skip=intent.used, reuse=True)
        if isinstance(read, str):
            return PlannerReply(text=read)
        args, said, _ = read
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
    def parts(self, catalog: Catalog) -> tuple[MetricQuestionReader, SemanticNames]:
        if self._built_for is not catalog or self._reader is None or self._names is None:
            values = self._values.of(catalog)
            self._names = SemanticNames(catalog.semantic)
            self._reader = MetricQuestionReader(build_vocabulary(catalog, values), self._names, values)
            self._built_for = catalog
        return self._reader, self._names


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

"""Aggregates over any catalogued column: "average discount by region", "max csat by team", "90th percentile
of resolution hours", "share of orders returned", "avg quantity per order". Computed by the semantic layer
inside the column's model (a proposed model for a table without one); the compiled SQL runs as a read.
"""
from __future__ import annotations

from agent.planners.base import PlannerReply
from agent.planners.column_measures import AGGREGATES, RANKING, ColumnAsk, ColumnIndex, model_for, read_column_ask, with_column_metric
from agent.planners.intent_registry import Context, Question, Reading
from agent.planners.intents import find_tables
from agent.planners.metric_matching import build_vocabulary
from agent.planners.metric_questions import MetricQuestionReader, Unclear
from agent.planners.semantic_names import SemanticNames
from agent.planners.value_filters import value_filter
from agent.state import Plan, Step

_INDEXES: dict[int, tuple[object, ColumnIndex]] = {}


def _index(context: Context) -> ColumnIndex:
    cached = _INDEXES.get(id(context.planner))
    if cached is None or cached[0] is not context.catalog:
        cached = (context.catalog, ColumnIndex(context.catalog))
        _INDEXES[id(context.planner)] = cached
    return cached[1]


def match(question: Question, context: Context) -> Reading | None:
    catalog, tokens = context.catalog, question.tokens
    named = {i: m.table for m in find_tables(tokens, catalog) for i in range(m.start, m.end)}
    ask = read_column_ask(tokens, catalog, _index(context), named)
    if ask is None:
        return None
    if isinstance(ask, str):
        return Reading("column_aggregate", 0.6, set(), {"text": ask})
    reader, _ = context.planner.parts(catalog)
    span = [t for t in tokens if t.index in ask.used and t.low not in ("per",)]
    words = [t for t in span if t.low not in AGGREGATES and t.low not in ("the", "a", "an", "of", "our", "all", "number")]
    ranking = any(t.low in RANKING for t in span)
    if (ask.agg in ("sum", "count") or ranking) and ask.per_entity is None and _names_a_metric(reader, words):
        return None  # "total revenue" is the metric itself; "the highest revenue" ranks by it
    model = model_for(catalog, ask.table)
    if model is None:
        return None
    manifest, metric = with_column_metric(catalog, ask, model)
    voc = reader.voc
    if model not in catalog.semantic.semantic_models:  # a proposed model: its dimensions are words too
        voc = build_vocabulary(catalog.model_copy(update={"semantic": manifest}), reader.values)
    read = MetricQuestionReader(voc, SemanticNames(manifest), reader.values).read(
        tokens, context.planner.clock(), skip=set(ask.used), fallback_metrics=[metric], follow_up=True)
    if isinstance(read, Unclear) or read.metrics != [metric]:
        return None
    args = read.args()
    if ask.agg == "share" and ask.column is None:
        conditions = [value_filter(n, v, neg) for n, (v, neg) in read.filters.items()]
        if not conditions:
            return None
        args["where"] = [w for w in args["where"] if w not in conditions]
        share = manifest.metric(metric)
        share.type_params.numerator.filter = conditions
    said = read.summary().replace(f"metric `{metric}`", ask.describe() + f" (as `{metric}`)", 1)
    used = set(ask.used) | {t.index for t in tokens if t.text not in read.left_out}
    # An aggregate word and a column are a more specific reading than a metric of the same words.
    return Reading("column_aggregate", 0.8, used, {"manifest": manifest, "args": args, "said": said, "ask": ask},
                   describe=ask.describe())


def _names_a_metric(reader: MetricQuestionReader, span: list) -> bool:
    """Whether the words name exactly one metric (two would be a question back, so rows are the plainer reading)."""
    entries = reader.voc.phrases.get(tuple(t.stem for t in span), [])
    return len({e.meaning.name for e in entries if e.meaning.kind == "metric"}) == 1


def plan(reading: Reading, context: Context) -> PlannerReply:
    if "text" in reading.data:
        return PlannerReply(text=reading.data["text"])
    from core.errors import UserError
    from catalog.semantic.compiler import compile_query
    from catalog.semantic.query import MetricQuery

    ask: ColumnAsk = reading.data["ask"]
    try:
        sql = compile_query(reading.data["manifest"], MetricQuery(**reading.data["args"])).sql
    except UserError as e:
        return PlannerReply(text=f"{reading.data['said']}\n\nThat cannot be computed: {e}")
    step = Step(id="s1", tool="run_sql", args={"sql": sql}, title=ask.describe().replace("`", ""))
    return PlannerReply(plan=Plan(steps=[step], summary=reading.data["said"]))

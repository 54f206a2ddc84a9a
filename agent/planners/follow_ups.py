"""Follow-ups that change the thread's last metric query: "now split that by month", "only for EMEA",
"what about csat?", "by segment instead", "and in 2025?".

Works on the previous turn's structured plan (its `query_metrics` arguments), never on its text; it
drops, and says so, the parts a changed metric can no longer use.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import UserError
from catalog.semantic.names import METRIC_TIME, SEPARATOR
from catalog.semantic.where_filters import parse_filter
from agent.planners.metric_questions import Ask
from agent.planners.question_words import Token, quoted
from agent.planners.semantic_names import SemanticNames, safe_reachable
from agent.planners.time_phrases import UNITS
from agent.planners.value_filters import time_filters, value_filter
from catalog.metadata_answers import readable_filter
from agent.state import Turn

QUERY_TOOL = "query_metrics"
_START_CUES = frozenset({"now", "only", "just", "and", "also", "but", "then", "instead", "same", "add", "plus",
                         "again", "excluding", "except", "without", "minus", "exclude", "ignoring", "omit"})
_REFERENCES = frozenset({"that", "it", "this", "those", "these", "same", "instead", "too", "them"})
_ADD_CUES = frozenset({"and", "also", "add", "plus", "too"})
_REPLACE_GROUP_CUES = frozenset({"instead", "rather"})


def previous_query(history: Sequence[Turn]) -> dict[str, Any] | None:
    """The `query_metrics` arguments of the thread's latest answered plan, if that plan was a metric query."""
    for turn in reversed(history):
        if turn.role != "assistant" or turn.plan is None:
            continue
        step = next((s for s in turn.plan.steps if s.tool == QUERY_TOOL), None)
        return dict(step.args) if step is not None else None
    return None


def sounds_like_follow_up(tokens: Sequence[Token]) -> bool:
    """Words that refer to the last answer ("that", "instead") or open a change ("now", "only", "what about");
    never the "this" of "this year"."""
    if not tokens:
        return False
    first = tokens[0].low
    if first in ("what", "how") and len(tokens) > 1 and tokens[1].low == "about":
        return True
    if first in _START_CUES:
        return True
    return any(t.low in _REFERENCES and not (t.index + 1 < len(tokens) and tokens[t.index + 1].low in UNITS)
               for t in tokens)


def adds_metrics(tokens: Sequence[Token]) -> bool:
    """"and orders too", "also csat", "add units sold": the named metrics join the last ones."""
    return bool(tokens) and (tokens[0].low in _ADD_CUES or any(t.low in ("too", "add", "plus") for t in tokens)
                             or (len(tokens) > 1 and tokens[-2].low == "as" and tokens[-1].low == "well"))


def changes_something(ask: Ask) -> bool:
    """Whether a follow-up asks for any change at all (else it was not understood)."""
    return bool(ask.named_metrics or ask.group_by or ask.grain or ask.time.has_range or ask.filters or ask.top)


def merge(previous: dict[str, Any], ask: Ask, names: SemanticNames,
          tokens: Sequence[Token]) -> tuple[dict[str, Any], list[str]]:
    """The previous query changed by `ask`, and notes on what was kept, replaced or dropped."""
    notes: list[str] = []
    old_metrics = list(previous.get("metrics") or [])
    if ask.named_metrics:
        metrics = list(dict.fromkeys(old_metrics + ask.metrics)) if adds_metrics(tokens) else list(ask.metrics)
    else:
        metrics = old_metrics
    reach = safe_reachable(names, metrics)
    reachable = set(reach.all_names()) if reach else set()
    has_time = bool(reach and reach.has_time)

    def usable(name: str) -> bool:
        base = name.split(SEPARATOR)
        if base[0] == METRIC_TIME:
            return has_time
        return name in reachable or SEPARATOR.join(base[:-1]) in reachable

    old_groups = list(previous.get("group_by") or [])
    old_time = [g for g in old_groups if g.split(SEPARATOR)[0] == METRIC_TIME]
    old_dims = [g for g in old_groups if g not in old_time]
    replace = bool(ask.group_by) and any(t.low in _REPLACE_GROUP_CUES for t in tokens)
    dims = ([] if replace else old_dims) + [g for g in ask.group_by if replace or g not in old_dims]
    time_group = [f"{METRIC_TIME}__{ask.grain}"] if ask.grain else old_time
    group_by = []
    for g in dims + time_group:
        if usable(g):
            group_by.append(g)
        else:
            notes.append(f"dropped `{g}`: {quoted(metrics)} cannot be split by it")

    where: list[str] = []
    for w in previous.get("where") or []:
        refs = _refs(w)
        if refs is None:
            where.append(w)
            continue
        if ask.time.has_range and refs and all(r.split(SEPARATOR)[0] == METRIC_TIME for r in refs):
            continue  # the new time range replaces the old one
        if set(refs) & set(ask.filters):
            continue  # a new filter on the same dimension replaces the old one
        if not all(usable(r) for r in refs):
            notes.append(f"dropped the filter `{readable_filter(w)}`: it does not apply to {quoted(metrics)}")
            continue
        where.append(w)
    where = (time_filters(ask.time.start, ask.time.end) + where
             + [value_filter(n, v, neg) for n, (v, neg) in ask.filters.items()])

    order_by = list(previous.get("order_by") or [])
    limit = previous.get("limit")
    if ask.top is not None:
        order_by = [("-" if ask.top.descending else "") + (ask.rank_metric or metrics[0])]
        limit = ask.top.n
    elif group_by != old_groups or metrics != old_metrics:
        times = [g for g in group_by if g.split(SEPARATOR)[0] == METRIC_TIME]
        others = [g for g in group_by if g not in times]
        order_by = times + others if times else (["-" + metrics[0]] if others else [])
        if limit is not None and group_by != old_groups:
            if old_dims and [g for g in group_by if g not in times] == old_dims and ask.grain:
                notes.append(f"kept the top {limit} `{'`, `'.join(old_dims)}` of the last answer, one series each")
            else:
                notes.append(f"dropped the limit of {limit} rows: the grouping changed")
            limit = None
    order_by = [o for o in order_by if usable(o.lstrip("-")) or o.lstrip("-") in metrics]
    return {"metrics": metrics, "group_by": group_by, "where": where, "order_by": order_by, "limit": limit}, notes


def _refs(text: str) -> list[str] | None:
    try:
        parsed = parse_filter(text)
    except UserError:
        return None
    return [r.qualified if not r.is_metric_time else r.name for r in parsed.refs.values()]


def describe(args: dict[str, Any]) -> str:
    parts = ["metric" + ("s " if len(args["metrics"]) > 1 else " ") + quoted(args["metrics"])]
    if args.get("group_by"):
        parts.append("by " + quoted(args["group_by"]))
    if args.get("where"):
        parts.append("where " + " and ".join(f"`{readable_filter(w)}`" for w in args["where"]))
    if args.get("limit"):
        parts.append(f"first {args['limit']} by `{(args.get('order_by') or ['?'])[0]}`")
    return "; ".join(parts)

"""Suggested training data beyond single tables: asked for replies "like our best agents" in any wording, the guided
fine-tuning flow offers the join of the messages with their best-scored answers (found from the catalog's
metadata: a key that links two text tables, a score column on the answers), with its row count and column mapping,
and the approved plan trains on exactly that read query. A catalog with no such pair offers its tables as before;
a score column named `rating` or `csat` is found by its name, description or glossary term."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from agent.session import Session
from core.workspace import Workspace
from runtimes.jobs.store import JobStore
from tests.agent_events import collect, of, text_of

BEST_REPLIES = ("SELECT count(*) FROM support_tickets t JOIN ticket_replies r ON r.ticket_id = t.ticket_id "
                "WHERE r.quality_score >= (SELECT quantile_disc(quality_score, 0.75) FROM ticket_replies)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Workspace:
    from catalog.workspace_setup import init_workspace
    from runtimes.training.tiny_models import install_demo_models

    ws = Workspace(Path(tmp_path_factory.mktemp("data-suggestions")) / "ws")
    init_workspace(ws, demo=True, scale=0.1)
    install_demo_models(ws)
    return ws


def _count(ws: Workspace, sql: str) -> int:
    with duckdb.connect(str(ws.warehouse_path), read_only=True) as con:
        return int(con.execute(sql).fetchone()[0])


@pytest.mark.parametrize("text", [
    "fine-tune tiny-qwen3 to answer like our best agents",
    "fine-tune a model that replies like our top-rated support staff",
    "fine-tune tiny-qwen3 on our highest quality ticket answers",
    "fine-tune tiny-qwen3 and make it write like our best reviewed replies",
])
def test_the_best_answers_join_is_the_first_suggestion_in_several_phrasings(demo, text):
    asked = text_of(collect(Session(demo, f"best-{hash(text)}").send(text)))
    assert "Which table should it learn from?" in asked
    first = next(line for line in asked.splitlines() if line.startswith("1. "))
    rows = _count(demo, BEST_REPLIES)
    assert first.startswith("1. `support_tickets+ticket_replies` (support_tickets joined with ticket_replies on "
                            "ticket_replies.ticket_id = support_tickets.ticket_id, ticket_replies.quality_score ≥ ")
    assert f"best first: {rows:,} rows, prompt ← support_tickets.body, completion ← ticket_replies.body) → sft" \
        in first
    assert "`reply_preferences`" in asked  # the single tables are still offered after it


def test_choosing_the_join_plans_on_its_read_query_and_waits_for_approval(demo):
    s = Session(demo, "best-flow")
    collect(s.send("fine-tune tiny-qwen3 to answer like our best agents max_steps=1"))
    technique = text_of(collect(s.send("1")))
    assert "Which technique?" in technique and "prompt_completion data" in technique
    events = collect(s.send("sft"))
    text = text_of(events)
    rows = _count(demo, BEST_REPLIES)
    step = of(events, "approval_needed")[0].plan.steps[0]
    assert step.tool == "start_finetune" and step.args.get("table") is None
    assert step.args["mapping"] == {"prompt": "prompt", "completion": "completion"}
    sql = step.args["sql"]
    assert "JOIN ticket_replies AS c ON c.ticket_id = p.ticket_id" in sql and "ORDER BY c.quality_score DESC" in sql
    assert _count(demo, f"SELECT count(*) FROM ({sql})") == rows
    assert f"Data: {rows:,} rows from support_tickets, ticket_replies" in text
    assert sql in text  # the query itself is shown for approval
    assert JobStore(demo).list() == []


def test_a_query_the_guard_refuses_is_never_suggested(demo):
    from catalog.safe_sql import run_sql
    from catalog.store import CatalogStore
    from runtimes.training.data_suggestions import scored_answer_joins

    for suggestion in scored_answer_joins(demo, CatalogStore(demo).load()):
        assert run_sql(demo, suggestion.sql).rows  # each one passed the guard and has rows


def _workspace(root: Path, replies: list[dict], *, describe: dict[str, str], glossary: list | None = None,
               messages_key: str | None = "message_id") -> Workspace:
    """Messages and their answers as two imported tables, described as given."""
    from catalog.importers import import_paths
    from catalog.metadata import Column, GlossaryTerm
    from catalog.store import CatalogStore

    ws = Workspace(root / "ws")
    ws.create()
    messages = [{"message_id": i, "text": f"Hello, my parcel number {i} has not arrived after two weeks of waiting."}
                for i in range(12)]
    (root / "messages.jsonl").write_text("".join(json.dumps(r) + "\n" for r in messages))
    (root / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in replies))
    faq = [{"prompt": f"How long does delivery {i} take?", "completion": f"About {i + 2} days."} for i in range(8)]
    (root / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in faq))
    import_paths(ws, [root / "messages.jsonl", root / "answers.jsonl", root / "faq.jsonl"])
    store = CatalogStore(ws)
    catalog = store.load()
    with store.transaction() as txn:
        for name in ("messages", "answers"):
            table = catalog.tables[name]
            cols = [Column(**{**c.model_dump(), "description": describe.get(f"{name}.{c.name}", c.description)})
                    for c in table.columns]
            key = {"messages": [messages_key] if messages_key else [], "answers": ["answer_id"]}[name]
            txn.put_table(table.model_copy(update={"columns": cols, "primary_key": key}))
        if glossary:
            txn.put_glossary([GlossaryTerm(**g) for g in glossary])
    return ws


def _answers(score_name: str) -> list[dict]:
    return [{"answer_id": i, "message_id": i % 12, score_name: 1 + i % 5,
             "text": f"Sorry about parcel {i % 12}: we have sent a replacement that arrives within three days."}
            for i in range(24)]


@pytest.mark.parametrize("score, describe, glossary", [
    ("rating", {}, None),  # the name says it
    ("csat", {"answers.csat": "Customer satisfaction with the answer, 1 to 5."}, None),  # the description says it
    ("csat", {}, [{"name": "CSAT", "definition": "Customer satisfaction score of an answer.",
                   "related": ["answers.csat"]}]),  # a glossary term says it
])
def test_a_score_column_named_differently_is_found(tmp_path, score, describe, glossary):
    from catalog.store import CatalogStore
    from runtimes.training.data_suggestions import scored_answer_joins

    ws = _workspace(tmp_path, _answers(score), describe=describe, glossary=glossary)
    [s] = scored_answer_joins(ws, CatalogStore(ws).load())
    assert (s.prompt_table, s.prompt_column, s.completion_table, s.completion_column, s.score_column) == \
        ("messages", "text", "answers", "text", score)
    assert (s.link.child, s.link.column, s.link.parent, s.link.key) == ("answers", "message_id", "messages",
                                                                       "message_id")
    assert s.threshold == 4 and s.rows == _count(ws, f"SELECT count(*) FROM answers WHERE {score} >= 4") == 9


def test_a_link_stated_only_in_a_column_description_is_followed(tmp_path):
    from catalog.store import CatalogStore
    from runtimes.training.data_suggestions import scored_answer_joins

    ws = _workspace(tmp_path, _answers("rating"), messages_key=None,
                    describe={"answers.message_id": "The message answered (messages.message_id)."})
    [s] = scored_answer_joins(ws, CatalogStore(ws).load())
    assert "the description of `answers.message_id`" in s.link.source


@pytest.mark.parametrize("answers, describe", [
    ([{k: v for k, v in r.items() if k != "rating"} for r in _answers("rating")], {}),  # no score column
    (_answers("rating"), {"answers.rating": ""}),  # a score, but nothing links the tables:
])
def test_without_such_a_pair_no_join_is_suggested_and_the_tables_are_offered_as_before(tmp_path, answers, describe):
    from catalog.store import CatalogStore
    from runtimes.training.data_suggestions import scored_answer_joins
    from tools.finetune import FinetuneChoices, question, table_options

    linked = "rating" not in answers[0]
    ws = _workspace(tmp_path, answers, describe=describe, messages_key="message_id" if linked else None)
    assert scored_answer_joins(ws, CatalogStore(ws).load()) == []
    asked, options = question(ws, FinetuneChoices(goal="answer like our best agents"))
    assert options == [o.name for o in table_options(ws)] and "faq" in options
    assert "joined with" not in asked and all("+" not in o for o in options)

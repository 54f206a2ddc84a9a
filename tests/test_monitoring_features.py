"""Features of LLM traffic: lengths, language (py3langid), topic from the catalog's glossary and metrics, and a
judge's score through LiteLLM against a real scripted OpenAI-compatible server."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from catalog.workspace_setup import init_workspace
from runtimes.monitoring.features import OTHER_TOPIC, JudgeSettings, Topics, compute_features, languages
from runtimes.monitoring.monitors import create_monitor, run_monitor
from runtimes.monitoring.traffic import record, render_chat
from tests.scripted_llm import ScriptedLLM, say
from tests.test_monitoring_monitors import NOW, requests


def test_lengths_words_and_traffic_columns():
    f = compute_features(["user: Where is my order?", ""], ["It ships  tomorrow.", "Sorry"], topics=Topics({}),
                         latency_ms=[120.5, 80], prompt_tokens=[7, 0], completion_tokens=[4, 1])
    assert f["prompt_length"].tolist() == [24, 0] and f["prompt_words"].tolist() == [5, 0]
    assert f["response_length"].tolist() == [19, 5] and f["response_words"].tolist() == [3, 1]
    assert f["latency_ms"].tolist() == [120.5, 80] and f["topic"].tolist() == [OTHER_TOPIC] * 2
    assert np.isnan(f["judge_score"]).all()
    assert np.isnan(compute_features(["a"], ["b"], topics=Topics({}))["latency_ms"]).all()


def test_languages_offline():
    got = languages([
        render_chat([{"role": "system", "content": "You answer tickets."},
                     {"role": "user", "content": "My parcel never arrived and nobody answers my emails."}]),
        "user: Ma commande n'est jamais arrivée et personne ne répond à mes messages.",
        "Mein Paket ist nie angekommen und niemand beantwortet meine E-Mails.",
        "user: 12345 ?!", ""])
    assert got == ["en", "fr", "de", "unknown", "unknown"]


def test_topics_from_the_demo_catalog(tmp_path):
    from core.workspace import Workspace

    ws = Workspace(tmp_path / "demo")
    init_workspace(ws, demo=True, scale=0.1)
    topics = Topics.from_catalog(ws)
    assert topics.of(["What was our revenue last month? And the turnover before?",
                      "Show me the average order value by region",  # the longer phrase wins over `order`
                      "I want to talk to a human"]) == ["revenue", "average order value", OTHER_TOPIC]
    assert "ticket volume" in topics.phrases and topics.key == Topics.from_catalog(ws).key


@pytest.mark.slow
def test_judge_scores_through_litellm(tmp_path):
    def score(body):
        text = body["messages"][-1]["content"]
        return say("Reasoning: polite and useful.\nScore: 9" if "refund" in text else "Score: 2")

    with ScriptedLLM([score] * 2) as llm:
        f = compute_features(["user: Can I get a refund?", "user: hello"],
                             ["Yes, your refund is on its way.", "No."], topics=Topics({}),
                             judge=JudgeSettings(model="openai/judge", api_base=llm.url), judge_dir=tmp_path)
    assert f["judge_score"].tolist() == [0.9, 0.2]


@pytest.mark.slow
def test_a_monitor_with_a_judge_tests_its_scores(workspace):
    day1, day2 = NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=1)
    record(workspace, requests(day1, 12, seed=41) + requests(day2, 12, shifted=True, seed=42))

    def score(body):
        # The judge likes the long replies of the shifted traffic (45 words or more) better.
        reply = body["messages"][-1]["content"].split("## The assistant's reply")[1].split("Give a score")[0]
        return say("Score: 8" if len(reply.split()) >= 45 else "Score: 3")

    with ScriptedLLM([score] * 24) as llm:
        create_monitor(workspace, {"name": "judged", "endpoint": "tickets", "min_rows": 10,
                                   "features": ["response_length", "judge_score"],
                                   "rules": [{"kind": "feature_drift", "feature": "judge_score"}],
                                   "judge": {"model": "openai/judge", "api_base": llm.url}}, now=NOW)
        run = run_monitor(workspace, "judged", now=NOW)
    assert [a.feature for a in run.alerts] == ["judge_score"]
    assert "mean 0.3 → 0.8" in run.alerts[0].message

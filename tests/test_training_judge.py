"""The RLAIF judge through LiteLLM against a real local OpenAI-compatible server: built-in and custom
rubrics, score parsing, concurrent batches, the on-disk cache, retries, and failures recorded and skipped."""
from __future__ import annotations

import asyncio
import json

import pytest

from core.errors import UserError
from runtimes.judging.judge import (Judge, builtin_rubrics, judge_reward, load_rubric, parse_score,
                                             prompt_text)
from tests.scripted_llm import ScriptedLLM, say

PROMPT = [{"role": "user", "content": "My order #12 is late."}]


def test_builtin_rubrics_render_with_the_row():
    assert builtin_rubrics() == ["faithfulness", "helpfulness", "summary_quality", "tone_policy"]
    text = load_rubric("faithfulness").render(prompt="Summarise.", completion="It ships Monday.",
                                              reference="The order ships on Monday.", policy=None)
    assert "## The source\nThe order ships on Monday." in text and "It ships Monday." in text
    tone = load_rubric("tone_policy").render(prompt="Hi", completion="Go away", reference=None,
                                             policy="Never be rude.")
    assert "## The policy\nNever be rude." in tone
    plain = load_rubric("helpfulness").render(prompt="Hi", completion="Hello", reference=None, policy=None)
    assert "for comparison" not in plain and plain.endswith("`Score: N`.")
    with pytest.raises(UserError, match="no rubric `helpfullness`; did you mean `helpfulness`"):
        load_rubric("helpfullness")
    with pytest.raises(UserError, match="rubric `custom` is not valid Jinja: line 1"):
        load_rubric("Rate {{ completion ")
    with pytest.raises(UserError, match="never shows the judge the completion"):
        load_rubric("Rate {{ prompt }}")


def test_custom_rubric_files_and_sandbox(tmp_path):
    f = tmp_path / "brevity.jinja"
    f.write_text("Is this short? {{ completion }} Score 0-5. Score: N", encoding="utf-8")
    rubric = load_rubric(str(f), max_score=5)
    assert rubric.name == "brevity" and rubric.render(prompt="", completion="Yes.", reference=None,
                                                      policy=None).startswith("Is this short? Yes.")
    evil = load_rubric("{{ completion.__class__.__mro__[1].__subclasses__() }}")
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        evil.render(prompt="", completion="x", reference=None, policy=None)


@pytest.mark.parametrize(("reply", "score"), [
    ("Good answer.\nScore: 8", 0.8), ("score = 10", 1.0), ("Score: **3**", 0.3), ('{"score": 5}', 0.5),
    ("Score: 2\nOn reflection, Score: 6", 0.6), ("Score: 11", None), ("I cannot grade this.", None), ("", None),
])
def test_parse_score(reply, score):
    assert parse_score(reply, 10) == score


def test_prompt_text():
    assert prompt_text(PROMPT) == "My order #12 is late."
    assert prompt_text([{"role": "system", "content": "Be kind."}] + PROMPT) == \
        "System: Be kind.\n\nUser: My order #12 is late."


@pytest.mark.slow
def test_judge_scores_a_batch_caches_and_records_failures(tmp_path):
    completions = [[{"role": "assistant", "content": t}] for t in ("Sorry, it ships today.", "Wait.", "No idea.")]
    with ScriptedLLM([say("Score: 9"), say("Score: 4"), say("Score: 1")]) as llm:
        judge = Judge(model="openai/judge", rubric=load_rubric("helpfulness"), run_dir=tmp_path,
                      api_base=llm.url, concurrency=3, requests_per_second=1000, retries=1)
        reward = judge_reward(judge)
        scores = asyncio.run(reward(prompts=[PROMPT] * 3, completions=completions, reference=[None] * 3))
        assert sorted(scores) == [0.1, 0.4, 0.9] and len(llm.requests) == 3
        assert reward.__name__ == "judge_helpfulness"
        sent = {r["messages"][0]["content"].split("## The assistant's reply\n")[1].split("\n")[0] for r in llm.requests}
        assert sent == {"Sorry, it ships today.", "Wait.", "No idea."}
        assert all(r["model"] == "judge" and r["temperature"] == 0.0 for r in llm.requests)

        # Cached: the same batch asks nothing again, also from a new judge reading the run folder.
        again = Judge(model="openai/judge", rubric=load_rubric("helpfulness"), run_dir=tmp_path, api_base=llm.url)
        assert asyncio.run(again.score([PROMPT] * 3, completions)) == scores and len(llm.requests) == 3

        # The script is spent: the server answers HTTP 500; the call is retried once, recorded and skipped.
        new = [[{"role": "assistant", "content": "Let me check."}]]
        assert asyncio.run(judge.score([PROMPT], new)) == [None]
        assert len(llm.requests) == 5 and judge.calls == 5
        llm.push(say("This reply is fine, I suppose."))
        assert asyncio.run(judge.score([PROMPT], [[{"role": "assistant", "content": "Hm."}]])) == [None]
        assert len(llm.requests) == 6  # a reply without a score is not retried

    reasons = [json.loads(line)["reason"] for line in (tmp_path / "judge" / "failures.jsonl").read_text().splitlines()]
    assert reasons[0].startswith("the judge call failed after 2 attempts: InternalServerError")
    assert "no reply left" in reasons[0]
    assert reasons[1] == "the judge's reply has no score from 0 to 10"
    assert [f["reason"] for f in judge.failures] == reasons


def test_faithfulness_without_a_source_is_a_recorded_failure(tmp_path):
    with ScriptedLLM([say("Score: 7")]) as llm:
        judge = Judge(model="openai/judge", rubric=load_rubric("faithfulness"), run_dir=tmp_path, api_base=llm.url)
        scores = asyncio.run(judge.score([PROMPT] * 2, ["It ships today.", "It ships today."],
                                         ["The order ships today.", None]))
        assert scores == [0.7, None] and len(llm.requests) == 1
        assert "## The source\nThe order ships today." in llm.prompt_text(0)
    assert judge.failures[0]["reason"] == "the row has no reference text for the faithfulness rubric"


def test_concurrency_is_bounded(tmp_path):
    import threading
    import time

    active, peak, lock = [0], [0], threading.Lock()

    def slow(body):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return say("Score: 5")

    with ScriptedLLM([slow] * 8) as llm:
        judge = Judge(model="openai/judge", rubric=load_rubric("helpfulness"), run_dir=tmp_path, api_base=llm.url,
                      concurrency=2, requests_per_second=1000)
        scores = asyncio.run(judge.score([PROMPT] * 8, [f"reply {i}" for i in range(8)]))
    assert scores == [0.5] * 8 and len(llm.requests) == 8 and peak[0] == 2

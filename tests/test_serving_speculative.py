"""Speculative decoding in the serving engine: greedy output identical with prompt lookup and with a draft model,
acceptance counts that add up per request and per endpoint, a draft with another tokenizer refused."""
from __future__ import annotations

import re

import pytest

from core.errors import UserError
from runtimes.serving.engines.transformers_engine import Engine, Sampling
from runtimes.models.refs import ServedModel
from runtimes.serving.engines.speculative import SpeculationConfig
from tests.serving_models import TEXTS, tiny_adapter, tiny_base

GREEDY = Sampling(max_new_tokens=32, temperature=0.0)
# Prompts that repeat text, so that prompt lookup finds continuations to propose.
PROMPTS = [f"{TEXTS[i]} {TEXTS[i + 1]} {TEXTS[i]}" for i in (0, 7, 21, 40)] + ["Order"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("spec")
    base = tiny_base(root / "base")
    return {"root": root, "base": base, "draft": tiny_base(root / "draft", seed=7),
            "adapter": tiny_adapter(base, root / "adapter", seed=2)}


def _engine(models, speculation=None) -> Engine:
    engine = Engine(str(models["base"]), speculation=speculation)
    engine.register(ServedModel(id="base", base=str(models["base"]), base_ref="tiny", adapter=None))
    engine.register(ServedModel(id="tuned@1", base=str(models["base"]), base_ref="tiny",
                                adapter=str(models["adapter"])))
    return engine


def _texts(engine: Engine, model_id: str = "base") -> list[tuple[str, dict]]:
    out = []
    for prompt in PROMPTS:
        g = engine.generate(model_id, engine.prompt_ids(model_id, prompt=prompt), GREEDY)
        out.append((g.text, g.stats))
    return out


def _adds_up(stats: dict) -> None:
    # each round is one target forward pass that keeps its accepted candidates plus the target's own next token
    assert stats["new_tokens"] == stats["accepted"] + stats["forward_passes"]
    assert 0 <= stats["accepted"] <= stats["proposed"]
    if stats["proposed"]:
        assert stats["acceptance_rate"] == round(stats["accepted"] / stats["proposed"], 4)


@pytest.mark.slow
def test_prompt_lookup_and_draft_give_the_same_greedy_output(models):
    plain = _engine(models)
    expected = {m: [t for t, _ in _texts(plain, m)] for m in ("base", "tuned@1")}
    assert expected["base"] != expected["tuned@1"]  # the adapter changes the output: both paths are exercised
    for config in (SpeculationConfig(prompt_lookup_tokens=5), {"prompt_lookup_tokens": 10, "max_matching_ngram": 3},
                   SpeculationConfig(draft=str(models["draft"]), draft_tokens=4)):
        engine = _engine(models, config)
        for model_id in ("base", "tuned@1"):
            got = _texts(engine, model_id)
            assert [t for t, _ in got] == expected[model_id], (config, model_id)
            for _, stats in got:
                _adds_up(stats)
                assert stats["requests"] == 1


def test_counts_add_up_per_request_and_per_endpoint(models):
    engine = _engine(models, {"prompt_lookup_tokens": 8})
    assert engine.speculation.totals()["requests"] == 0
    per_request = [stats for _, stats in _texts(engine)]
    assert sum(s["proposed"] for s in per_request) > 0  # the repeated prompts were looked up
    totals = engine.speculation.totals()
    assert totals["mode"] == "prompt_lookup" and totals["requests"] == len(PROMPTS)
    for key in ("proposed", "accepted", "forward_passes", "new_tokens"):
        assert totals[key] == sum(s[key] for s in per_request)
    _adds_up(totals)
    assert totals["draft_forward_passes"] == 0


def test_a_draft_identical_to_the_target_has_every_candidate_accepted(models):
    engine = _engine(models, {"draft": str(models["base"]), "draft_tokens": 4})
    ids = engine.prompt_ids("base", prompt=PROMPTS[1])
    g = engine.generate("base", ids, Sampling(max_new_tokens=33, temperature=0.0))
    stats = g.stats
    _adds_up(stats)
    assert stats["mode"] == "draft" and stats["draft_forward_passes"] > 0
    # the draft proposes what the target would choose; only a round cut short by the token budget loses some
    assert stats["proposed"] > 0 and stats["accepted"] >= stats["proposed"] - 4
    assert stats["forward_passes"] < stats["new_tokens"]


def test_sampled_requests_and_streams(models):
    engine = _engine(models, {"prompt_lookup_tokens": 5})
    ids = engine.prompt_ids("base", prompt=PROMPTS[0])
    sampled = engine.generate("base", ids, Sampling(max_new_tokens=8, temperature=0.8, seed=1))
    assert sampled.stats == {}  # sampled decoding does not speculate
    assert engine.speculation.totals()["requests"] == 0
    *pieces, final = list(engine.stream("base", ids, GREEDY))
    plain = _engine(models).generate("base", ids, GREEDY)
    assert "".join(pieces) == final.text == plain.text
    _adds_up(final.stats)


def test_stop_strings_end_speculative_and_plain_decoding_at_the_same_token(models):
    plain, engine = _engine(models), _engine(models, {"prompt_lookup_tokens": 10})
    checked = 0
    for prompt in PROMPTS:
        ids = plain.prompt_ids("base", prompt=prompt)
        # a stop string of plain characters from the middle of the reply (the random model also writes bytes
        # that are no whole character, which transformers' stop-string check cannot match)
        runs = re.findall(r"[A-Za-z0-9 ]{3,}", plain.generate("base", ids, GREEDY).text)
        if not runs:
            continue
        stop = Sampling(max_new_tokens=32, temperature=0.0, stop=[runs[len(runs) // 2][:3]])
        a, b = plain.generate("base", ids, stop), engine.generate("base", ids, stop)
        assert (a.text, a.completion_tokens, a.finish_reason) == (b.text, b.completion_tokens, b.finish_reason)
        assert b.completion_tokens <= b.stats["new_tokens"]
        checked += 1
    assert checked >= 2


def test_a_draft_with_another_tokenizer_is_refused(models):
    from runtimes.training.tiny_models import build_tiny_model

    other = build_tiny_model("qwen3", models["root"] / "other", [f"Another corpus, line {i}." for i in range(60)],
                             hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=300)
    with pytest.raises(UserError, match="does not share the tokenizer"):
        _engine(models, {"draft": str(other)})


@pytest.mark.parametrize("config, message", [
    ({}, "either `draft`"),
    ({"draft": "x", "prompt_lookup_tokens": 5}, "not both"),
    ({"prompt_lookup_tokens": 0}, "prompt_lookup_tokens"),
    ({"prompt_lookup_tokens": 5, "draft_tokens": 3}, "draft model only"),
    ({"prompt_lookup_tokens": 5, "ngram": 3}, "ngram"),
])
def test_bad_settings_are_refused(models, config, message):
    with pytest.raises(UserError, match=message):
        _engine(models, config)

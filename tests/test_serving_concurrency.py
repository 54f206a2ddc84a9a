"""Concurrent requests on one engine, decoded together by continuous batching on real tiny models: every greedy
reply equals the one-at-a-time reply (and `model.generate`'s), across adapters, prompt lengths, token limits,
stop strings and streaming; requests share forward passes; a seeded sampled reply does not depend on its
neighbours; an abandoned stream stops while the others go on; the adapter cap holds under concurrency."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runtimes.models.refs import ServedModel
from runtimes.serving.engines.transformers_engine import Engine, Generation, Sampling
from tests.serving_models import TEXTS, tiny_adapter, tiny_base

PROMPTS = ["Order 12 ships on day", "Where is my refund for the broken lamp I sent back last week?", "Hi",
           TEXTS[3], f"{TEXTS[5]} {TEXTS[6]}", "Ticket"]
MODELS = ("base", "a1", "a2")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("concurrency-models")
    base = tiny_base(d / "base")
    return {"base": base, "a1": tiny_adapter(base, d / "a1", seed=1), "a2": tiny_adapter(base, d / "a2", seed=2)}


def _engine(models: dict[str, Path], **options) -> Engine:
    engine = Engine(str(models["base"]), **options)
    for name in MODELS:
        engine.register(ServedModel(name, str(models["base"]), "base", None if name == "base" else str(models[name])))
    return engine


def _cases() -> list[tuple[str, str, Sampling]]:
    """Every model with every prompt, token limits from 3 to 40 (rows leave the batch at different steps)."""
    cases = []
    for i, prompt in enumerate(PROMPTS):
        for j, model in enumerate(MODELS):
            cases.append((model, prompt, Sampling(max_new_tokens=3 + 37 * ((i + j) % 2) + i, temperature=0)))
    return cases


def _together(engine: Engine, cases, stream_every: int = 2) -> list[tuple[str, int, str]]:
    """All cases at once from their own threads (every `stream_every`-th streamed), started together."""
    results: list = [None] * len(cases)
    start = threading.Barrier(len(cases))

    def ask(i: int) -> None:
        model, prompt, sampling = cases[i]
        ids = engine.prompt_ids(model, prompt=prompt)
        start.wait()
        if i % stream_every == 0:
            items = list(engine.stream(model, ids, sampling))
            final = items[-1]
            assert isinstance(final, Generation) and "".join(items[:-1]) == final.text  # streaming still streams
        else:
            final = engine.generate(model, ids, sampling)
        results[i] = (final.text, final.completion_tokens, final.finish_reason)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _alone(engine: Engine, cases) -> list[tuple[str, int, str]]:
    out = []
    for model, prompt, sampling in cases:
        g = engine.generate(model, engine.prompt_ids(model, prompt=prompt), sampling)
        out.append((g.text, g.completion_tokens, g.finish_reason))
    return out


def test_concurrent_greedy_replies_equal_one_at_a_time(models):
    engine = _engine(models)
    cases = _cases()
    alone = _alone(engine, cases)
    assert len({text for text, _, _ in alone}) > len(PROMPTS) * 2  # adapters and prompts change the replies

    from transformers import AutoModelForCausalLM

    reference = AutoModelForCausalLM.from_pretrained(str(models["base"])).eval()
    for (model, prompt, sampling), (text, tokens, _) in zip(cases, alone):
        if model == "base":  # one at a time is exactly what `generate` gives
            ids = engine.prompt_ids(model, prompt=prompt)
            out = reference.generate(ids, max_new_tokens=sampling.max_new_tokens, do_sample=False,
                                     pad_token_id=engine.tokenizer.pad_token_id)
            assert engine.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True) == text
            assert out.shape[1] - ids.shape[1] == tokens

    assert _together(engine, cases) == alone
    with_stops = [(m, p, Sampling(max_new_tokens=s.max_new_tokens, temperature=0, stop=[text[2:4]]))
                  for (m, p, s), (text, _, _) in zip(cases, alone) if len(text) > 4]
    cut = _together(engine, with_stops, stream_every=3)
    assert cut == _alone(engine, with_stops)
    assert all(reason == "stop" for _, _, reason in cut)
    assert not engine.busy


def test_requests_share_forward_passes(models):
    engine = _engine(models)
    forwards: list[int] = []
    engine.model.register_forward_hook(lambda *_: forwards.append(1))
    sampling = Sampling(max_new_tokens=24, temperature=0)
    inputs = [engine.prompt_ids("base", prompt=p) for p in PROMPTS]
    alone = [engine.generate("base", ids, sampling) for ids in inputs]
    one_at_a_time = len(forwards)
    forwards.clear()
    together = engine.generate_batch("base", inputs, sampling)
    assert [g.text for g in together] == [g.text for g in alone]
    tokens = sum(g.completion_tokens for g in alone)
    assert one_at_a_time == tokens  # a prefill per request, then one pass per further token
    assert len(forwards) <= len(PROMPTS) + max(g.completion_tokens for g in alone)  # prefills, then shared steps


def test_a_seeded_sampled_reply_does_not_depend_on_its_neighbours(models):
    engine = _engine(models)
    sampled = ("a1", PROMPTS[0], Sampling(max_new_tokens=30, temperature=0.9, top_p=0.9, seed=11))
    alone = _alone(engine, [sampled])[0]
    assert _alone(engine, [sampled])[0] == alone
    others = [("base", PROMPTS[1], Sampling(max_new_tokens=30, temperature=1.0, seed=i)) for i in range(3)]
    together = _together(engine, [sampled, *others, *_cases()[:4]])
    assert together[0] == alone
    assert len({text for text, _, _ in together[1:4]}) == 3  # different seeds, different samples


def test_an_abandoned_stream_stops_while_the_others_go_on(models):
    engine = _engine(models)
    long = Sampling(max_new_tokens=300, temperature=0)
    ids = engine.prompt_ids("base", prompt="Order")
    expected = engine.generate("a1", ids, long)
    assert expected.completion_tokens > 150
    before = engine.tokens_generated
    kept: dict[str, Generation] = {}
    pieces = engine.stream("base", ids, long)
    next(pieces)
    other = threading.Thread(target=lambda: kept.update(g=engine.generate("a1", ids, long)))
    other.start()
    pieces.close()  # the client went away
    other.join()
    assert kept["g"].text == expected.text
    assert not engine.busy
    abandoned = engine.tokens_generated - before - kept["g"].completion_tokens
    assert 1 <= abandoned < long.max_new_tokens / 2


def test_the_adapter_cap_holds_under_concurrency(models):
    changes: list[tuple[str, str]] = []
    engine = _engine(models, max_adapters=1, on_adapter=lambda change, model_id: changes.append((change, model_id)))
    cases = [(m, p, Sampling(max_new_tokens=12, temperature=0)) for p in PROMPTS[:3] for m in MODELS]
    fresh = _engine(models)
    assert _together(engine, cases) == _alone(fresh, cases)
    assert len(engine.loaded_adapters()) == 1
    # Every load and eviction is reported as it happens: replayed, the reports give what is in memory.
    held: set[str] = set()
    for change, model_id in changes:
        assert (model_id in held) == (change == "unloaded"), changes
        (held.add if change == "loaded" else held.discard)(model_id)
    assert held == set(engine.loaded_adapters()) and {m for _, m in changes} == {"a1", "a2"}, changes

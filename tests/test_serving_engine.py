"""The serving engine and deploy references on real tiny models: registered versions resolve to their files and
approval, adapters that do not fit their base are refused without loading, several adapters share one base with
least-recently-used eviction and the same outputs as a fresh engine, streaming matches the whole reply, stop
strings cut it, and a stream closed early (its client gone) stops generating."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import UserError
from runtimes.serving.engines.adapter_fit import check_adapter_fits
from runtimes.serving.engines.transformers_engine import ChatMessage, Engine, Generation, Sampling
from runtimes.models.refs import ServedModel, resolve_served
from runtimes.models.registry import decide, register_version
from tests.serving_models import tiny_adapter, tiny_base
from tests.waiting import wait_for

GREEDY = Sampling(max_new_tokens=10, temperature=0)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("serving-models")
    base = tiny_base(d / "base")
    other = tiny_base(d / "other", hidden=48)
    return {"base": base, "a1": tiny_adapter(base, d / "a1", seed=1), "a2": tiny_adapter(base, d / "a2", seed=2),
            "wide": tiny_adapter(other, d / "wide", seed=3)}


def _ask(engine: Engine, model_id: str, text: str = "Where is order 5?") -> Generation:
    ids = engine.prompt_ids(model_id, messages=[ChatMessage(role="user", content=text)])
    return engine.generate(model_id, ids, GREEDY)


@pytest.mark.slow
def test_deploy_references_resolve_to_files_and_approval(workspace, models):
    lineage = {"job_id": "j1", "base_model": str(models["base"]), "technique": "sft", "dataset_sql": "SELECT 1"}
    register_version(workspace, "ticket-sft", str(models["a1"]), None, lineage)
    register_version(workspace, "ticket-sft", str(models["a2"]), None, {**lineage, "job_id": "j2"})
    with pytest.raises(UserError, match=r"no approved version to deploy \(versions: 1 \(pending\), 2 \(pending\)\)"):
        resolve_served(workspace, "ticket-sft")
    with pytest.raises(UserError, match="version 2 is pending, not approved"):
        resolve_served(workspace, "ticket-sft@2")
    decide(workspace, "ticket-sft", "1", "approved", "dana")
    served = resolve_served(workspace, "ticket-sft")
    assert (served.id, served.adapter, served.base) == ("ticket-sft@1", str(models["a1"]), str(models["base"]))
    assert served.training_sql == "SELECT 1"
    with pytest.raises(UserError, match="version 2 is pending, not approved"):  # no switch serves it anyway
        resolve_served(workspace, "ticket-sft@latest")
    with pytest.raises(UserError, match="`ticket-sft` has no version 9; its versions: 1, 2"):
        resolve_served(workspace, "ticket-sft@9")
    with pytest.raises(UserError, match="no model `ticket-sf`; did you mean `ticket-sft`"):
        resolve_served(workspace, "ticket-sf")
    with pytest.raises(UserError, match="`@newest` is not a version"):
        resolve_served(workspace, "ticket-sft@newest")


def test_an_adapter_for_another_base_is_refused_before_loading(models):
    check_adapter_fits(str(models["base"]), str(models["a1"]))
    with pytest.raises(UserError, match="does not fit the base model .* deploy it with the base it was trained on"):
        check_adapter_fits(str(models["base"]), str(models["wide"]))


def test_adapters_share_a_base_with_lru_eviction_and_unchanged_outputs(models):
    engine = Engine(str(models["base"]), max_adapters=1)
    for name in ("a1", "a2"):
        engine.register(ServedModel(name, str(models["base"]), "base", str(models[name])))
    engine.register(ServedModel("base", str(models["base"]), "base", None))
    with pytest.raises(UserError, match="does not fit"):
        engine.register(ServedModel("wide", str(models["base"]), "base", str(models["wide"])))
    first = {m: _ask(engine, m).text for m in ("base", "a1", "a2")}
    assert engine.loaded_adapters() == ["a2"]  # a1 left when a2 came: the cap is 1
    again = {m: _ask(engine, m).text for m in ("a1", "base", "a2")}
    assert again == first and len(set(first.values())) == 3  # each adapter changes the output, eviction does not

    fresh = Engine(str(models["base"]))
    fresh.register(ServedModel("a2", str(models["base"]), "base", str(models["a2"])))
    assert _ask(fresh, "a2").text == first["a2"]
    with pytest.raises(UserError, match="no model on this endpoint `a3`"):
        _ask(engine, "a3")


def test_streaming_matches_the_whole_reply_and_stop_strings_cut(models):
    engine = Engine(str(models["base"]))
    engine.register(ServedModel("base", str(models["base"]), "base", None))
    ids = engine.prompt_ids("base", prompt="Order 12 ships on day")
    whole = engine.generate("base", ids, Sampling(max_new_tokens=12, temperature=0))
    streamed = list(engine.stream("base", ids, Sampling(max_new_tokens=12, temperature=0)))
    assert isinstance(streamed[-1], Generation)
    assert "".join(streamed[:-1]) == whole.text == streamed[-1].text
    assert whole.prompt_tokens == ids.shape[1] and 0 < whole.completion_tokens <= 12
    assert whole.finish_reason in ("stop", "length")
    if len(whole.text) > 2:
        stop = whole.text[1:3]
        cut = engine.generate("base", ids, Sampling(max_new_tokens=12, temperature=0, stop=[stop]))
        assert cut.text == whole.text[:whole.text.find(stop)] and cut.finish_reason == "stop"
    with pytest.raises(UserError, match="send `messages`"):
        engine.prompt_ids("base")


def test_a_stream_closed_early_stops_generating_and_frees_the_engine(models):
    engine = Engine(str(models["base"]))
    engine.register(ServedModel("base", str(models["base"]), "base", None))
    forwards: list[int] = []
    engine.model.register_forward_hook(lambda *_: forwards.append(1))
    ids = engine.prompt_ids("base", prompt="Order 12 ships on day")
    long = Sampling(max_new_tokens=120, temperature=0)
    read_whole = list(engine.stream("base", ids, long))
    assert read_whole[-1].completion_tokens > 60  # it would run long: what closing early saves is measurable
    whole = len(forwards)

    forwards.clear()
    pieces = engine.stream("base", ids, long)
    next(pieces)
    pieces.close()  # what the endpoint does when its client goes away mid-stream
    wait_for(lambda: not engine.busy, progress=lambda: len(forwards), what="the abandoned stream to stop")
    assert engine.generate("base", ids, Sampling(max_new_tokens=1, temperature=0)).completion_tokens == 1
    assert len(forwards) < whole // 2  # stopped soon after the first piece, not at max_new_tokens


def test_a_batch_of_prompts_gets_the_replies_each_would_get_alone(models):
    engine = Engine(str(models["base"]))
    engine.register(ServedModel("base", str(models["base"]), "base", None))
    engine.register(ServedModel("a1", str(models["base"]), "base", str(models["a1"])))
    texts = ["Order 12 ships on day", "Where is my refund for the broken lamp I sent back last week?", "Hi"]
    for model_id in ("base", "a1"):
        ids = [engine.prompt_ids(model_id, prompt=t) for t in texts]  # three lengths: left padding differs
        alone = [engine.generate(model_id, i, GREEDY) for i in ids]
        together = engine.generate_batch(model_id, ids, GREEDY)
        assert [(g.text, g.completion_tokens, g.prompt_tokens, g.finish_reason) for g in together] == \
            [(g.text, g.completion_tokens, g.prompt_tokens, g.finish_reason) for g in alone]
    assert len({g.text for g in together}) == 3

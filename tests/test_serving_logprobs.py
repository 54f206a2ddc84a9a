"""Log probabilities over the OpenAI API: `logprobs`/`top_logprobs` on chat completions (`choices[].logprobs.content`)
and `logprobs` on completions (tokens, token_logprobs, top_logprobs, text_offset), whole and streamed, greedy and
sampled, with stop strings and logit_bias; the limits OpenAI sets are refused with a 400 naming the field. Over
real HTTP on loopback with the official `openai` client, on the tiny model the other serving tests use."""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from runtimes.models.refs import ServedModel
from runtimes.serving.endpoints.api_keys import key_hash
from runtimes.serving.endpoints.openai_api import EndpointSettings, create_app
from runtimes.serving.engines.pool import EnginePool
from tests.serving_http import serve
from tests.serving_models import tiny_base

KEY = "logprobs-key"
HELLO = [{"role": "user", "content": "Order 5 ships on day"}]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    base = tiny_base(tmp_path_factory.mktemp("logprobs") / "base")
    pool = EnginePool([ServedModel("tiny", str(base), "tiny", None)])
    pool.load_all()
    app = create_app(pool, EndpointSettings(name="logprobs", key_hashes=(key_hash(KEY),)))
    with serve(app) as url:
        yield url


@pytest.fixture()
def client(endpoint):
    return openai.OpenAI(base_url=endpoint + "/v1", api_key=KEY, max_retries=0)


def _entries(content) -> list[dict]:
    return [e.model_dump() for e in content]


def _chat(client, stream: bool, **kw) -> tuple[str, str, list[dict], int | None]:
    """(text, finish reason, logprobs.content as dicts, completion tokens) of one chat reply."""
    args = dict(model="tiny", messages=HELLO, max_tokens=24, logprobs=True, **kw)
    if not stream:
        r = client.chat.completions.create(**args)
        c = r.choices[0]
        return c.message.content, c.finish_reason, _entries(c.logprobs.content), r.usage.completion_tokens
    text, finish, entries = "", None, []
    for chunk in client.chat.completions.create(stream=True, **args):
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
            if c.logprobs is not None and c.logprobs.content:
                entries += _entries(c.logprobs.content)
    return text, finish, entries, None


def _check_entry(e: dict, top: int) -> None:
    assert e["logprob"] <= 0 and math.isfinite(e["logprob"])
    assert e["bytes"] == list(e["token"].encode("utf-8")) or "\\x" in e["token"]  # a partial character: escaped
    assert len(e["top_logprobs"]) == top
    values = [t["logprob"] for t in e["top_logprobs"]]
    assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)


def test_greedy_chat_logprobs_are_the_chosen_tokens_at_the_top(client):
    text, finish, entries, completion_tokens = _chat(client, False, temperature=0, top_logprobs=3)
    assert finish == "length" and len(entries) == completion_tokens == 24
    for e in entries:
        _check_entry(e, 3)
        best = e["top_logprobs"][0]  # greedy: the chosen token is the most likely one
        assert (best["token"], best["logprob"], best["bytes"]) == (e["token"], e["logprob"], e["bytes"])
    assert b"".join(bytes(e["bytes"]) for e in entries).decode("utf-8", errors="replace") == text
    # top_logprobs left out: the chosen tokens' own log probabilities, no alternatives
    assert [(e["token"], e["logprob"]) for e in _chat(client, False, temperature=0)[2]] == \
        [(e["token"], e["logprob"]) for e in entries]
    assert all(e["top_logprobs"] == [] for e in _chat(client, False, temperature=0)[2])


def test_streamed_chat_logprobs_equal_whole_ones_with_and_without_a_stop_string(client):
    plain = _chat(client, False, temperature=0, top_logprobs=2)
    assert _chat(client, True, temperature=0, top_logprobs=2)[:3] == plain[:3]
    stop = plain[0][len(plain[0]) // 2:len(plain[0]) // 2 + 2]  # cuts the reply in its middle
    whole = _chat(client, False, temperature=0, top_logprobs=2, stop=[stop])
    assert whole[1] == "stop" and len(whole[0]) < len(plain[0])
    assert _chat(client, True, temperature=0, top_logprobs=2, stop=[stop])[:3] == whole[:3]
    # the tokens listed are those of the reply: up to the one in which the stop string begins
    assert 0 < len(whole[2]) < len(plain[2]) and whole[2] == plain[2][:len(whole[2])]
    assert b"".join(bytes(e["bytes"]) for e in whole[2]).decode("utf-8", errors="replace").startswith(whole[0])


def test_sampled_logprobs_come_from_the_scores_after_logit_bias(client):
    text, _, entries, _ = _chat(client, False, temperature=0, top_logprobs=1)
    favoured = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=6, logprobs=True,
                                              top_logprobs=2, temperature=1.0, seed=7,
                                              logit_bias={"42": 100})
    for e in _entries(favoured.choices[0].logprobs.content):
        _check_entry(e, 2)
        assert e["logprob"] > -1e-3  # the +100 bias makes token 42 all but certain, and it is what is reported
    seeded = [client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8, logprobs=True,
                                             temperature=1.0, seed=3) for _ in range(2)]
    assert _entries(seeded[0].choices[0].logprobs.content) == _entries(seeded[1].choices[0].logprobs.content)


def test_logprobs_of_requests_decoded_together_are_those_of_each_alone(client):
    prompts = ["Order 5 ships on day", "Hi", "Where is my refund for the broken lamp?", "Ticket 7 is about"]

    def ask(prompt: str) -> list[dict]:
        r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": prompt}],
                                           max_tokens=12, temperature=0, logprobs=True, top_logprobs=2)
        return _entries(r.choices[0].logprobs.content)

    alone = [ask(p) for p in prompts]
    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(ask, prompts))
    for a, b in zip(alone, together):
        assert [e["token"] for e in a] == [e["token"] for e in b]
        assert all(abs(x["logprob"] - y["logprob"]) < 1e-4 for x, y in zip(a, b))  # float rounding at most


def _completion(client, stream: bool, **kw) -> tuple[str, dict]:
    args = dict(model="tiny", prompt="Order 5 ships on day", max_tokens=16, temperature=0, logprobs=2, **kw)
    if not stream:
        c = client.completions.create(**args).choices[0]
        return c.text, c.logprobs.model_dump()
    text, merged = "", {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for chunk in client.completions.create(stream=True, **args):
        for c in chunk.choices:
            text += c.text
            if c.logprobs is not None:
                for k in merged:
                    merged[k] += getattr(c.logprobs, k) or []
    return text, merged


def test_completion_logprobs_in_the_legacy_shape_whole_and_streamed(client):
    text, lp = _completion(client, False)
    n = len(lp["tokens"])
    assert n == 16 and all(len(lp[k]) == n for k in ("token_logprobs", "top_logprobs", "text_offset"))
    offsets = lp["text_offset"]
    assert offsets[0] == 0 and offsets == sorted(offsets) and offsets[-1] < len(text)
    for token, offset in zip(lp["tokens"], offsets):  # a token that is a whole text stands where it says
        assert "\\x" in token or text[offset:offset + len(token)] == token
    for token, logprob, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
        assert logprob <= 0 and len(top) == 2 and max(top.values()) == logprob and top[token] == logprob
    assert _completion(client, True) == (text, lp)
    stop = text[len(text) // 2:len(text) // 2 + 2]
    assert _completion(client, True, stop=[stop]) == _completion(client, False, stop=[stop])


@pytest.mark.parametrize(("route", "extra", "param", "says"), [
    ("chat", {"logprobs": True, "top_logprobs": 21}, "top_logprobs", "less than or equal to 20"),
    ("chat", {"logprobs": True, "top_logprobs": -1}, "top_logprobs", "greater than or equal to 0"),
    ("chat", {"top_logprobs": 2}, "top_logprobs", "`logprobs` must be true"),
    ("chat", {"logprobs": False, "top_logprobs": 2}, "top_logprobs", "`logprobs` must be true"),
    ("completion", {"logprobs": 6}, "logprobs", "less than or equal to 5"),
    ("completion", {"logprobs": -1}, "logprobs", "greater than or equal to 0"),
])
def test_logprob_limits_are_refused_naming_the_field(endpoint, route, extra, param, says):
    body = ({"model": "tiny", "messages": HELLO} if route == "chat" else {"model": "tiny", "prompt": "x"}) | extra
    path = "/v1/chat/completions" if route == "chat" else "/v1/completions"
    r = httpx.post(endpoint + path, json={**body, "max_tokens": 4}, headers={"Authorization": f"Bearer {KEY}"},
                   timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and says in error["message"], error

"""The OpenAI API, exactly: a streamed reply adds up to the whole reply (text and finish reason) whatever stop
strings span the streamed pieces; every request field is honoured or refused with a 400 naming it (n, penalties,
logit_bias, JSON output by constrained decoding; logprobs and tools have their own tests). Over real HTTP on
loopback with the official `openai` client; `lathe deploy --speculative` through the CLI."""
from __future__ import annotations

import itertools
import json

import httpx
import jsonschema
import openai
import pytest
from typer.testing import CliRunner

from runtimes.models.refs import ServedModel
from runtimes.serving.endpoints.api_keys import key_hash
from runtimes.serving.endpoints.openai_api import EndpointSettings, create_app
from runtimes.serving.engines.pool import EnginePool
from runtimes.serving.engines.stop_strings import StopHoldBack
from tests.serving_http import serve
from tests.serving_models import tiny_base

KEY = "exact-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "Order 5 ships on day"}]
NEVER = "\u2603never"  # a stop string the tiny model does not write


def _first_stop(text: str, stops: list[str]) -> str:
    """What a whole reply is: `text` cut before the earliest stop string (worked out here, independently)."""
    at = [text.find(s) for s in stops if s and s in text]
    return text[:min(at)] if at else text


# ---- the hold-back itself, every way of cutting a text into up to three pieces -----------------------------
HOLD_BACK_CASES = [
    ("Hello world. Bye now", ["world"]),                      # one stop inside
    ("Hello world. Bye now", ["xyz", "lo w", "Bye", "."]),   # many, the earliest wins
    ("naïve café — done ✓ ok", ["é —", "✓"]),               # unicode
    ("xabcd and more", ["abcd", "bc"]),                        # overlapping: the longer one starts first
    ("xabce and more", ["abcd", "bc"]),                        # overlapping: the longer one never completes
    ("xabc", ["abcd", "bc"]),                                  # overlapping, undecided when the text ends
    ("aaab tail", ["aab", "ab"]),                              # repeated letters
    ("STOP at once", ["STOP"]),                                # at the very start
    ("ends with END", ["END"]),                                # at the very end
    ("a b c wor", ["world"]),                                  # a beginning that never completes
    ("no stop here", []),
    ("no stop here", ["zzz", "qq"]),
]


@pytest.mark.parametrize(("text", "stops"), HOLD_BACK_CASES)
def test_held_back_stream_equals_the_whole_reply_for_every_split(text, stops):
    whole = _first_stop(text, stops)
    for cuts in itertools.chain(itertools.combinations(range(1, len(text)), 1),
                                itertools.combinations(range(1, len(text)), 2)):
        edges = [0, *cuts, len(text)]
        pieces = [text[a:b] for a, b in zip(edges, edges[1:])]
        held, out = StopHoldBack(stops), ""
        for piece in pieces:
            out += held.feed(piece)
            assert whole.startswith(out), (pieces, out)  # nothing sent is ever taken back
            if held.stopped:
                break
        out += held.rest(whole)
        assert out == whole, pieces
        assert not held.stopped or whole != text  # it stops only at a stop string


# ---- over HTTP with the openai client ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tiny_base(tmp_path_factory.mktemp("exact") / "base")


@pytest.fixture(scope="module")
def endpoint(base):
    pool = EnginePool([ServedModel("tiny", str(base), "tiny", None)])
    pool.load_all()
    app = create_app(pool, EndpointSettings(name="exact", key_hashes=(key_hash(KEY),)))
    with serve(app) as url:
        yield url, pool


@pytest.fixture()
def client(endpoint):
    return openai.OpenAI(base_url=endpoint[0] + "/v1", api_key=KEY, max_retries=0)


def _chat(client, stream: bool, **kw):
    """(text, finish_reason, pieces) of one greedy chat reply, streamed or whole."""
    args = dict(model="tiny", messages=HELLO, max_tokens=40, temperature=0, **kw)
    if not stream:
        r = client.chat.completions.create(**args)
        return r.choices[0].message.content, r.choices[0].finish_reason, None
    pieces, finish = [], None
    for chunk in client.chat.completions.create(stream=True, **args):
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            finish = c.finish_reason or finish
    return "".join(pieces), finish, pieces


def _stop_sets(pieces: list[str]) -> dict[str, list[str]]:
    """Stop strings placed on the borders of the streamed pieces of the unstopped reply."""
    text = "".join(pieces)
    b1, b2 = len(pieces[0]), len(pieces[0]) + len(pieces[1])  # where piece 1 and piece 2 start
    span2 = text[b1 - 2:b1 + 2]
    first_unicode = next(i for i, ch in enumerate(text) if ord(ch) > 127 and ch != "\ufffd")
    return {
        "spans two pieces": [span2],
        "spans three pieces": [text[b1 - 1:b2 + 1]],
        "many, one spanning": [NEVER, "no such", span2, "zz\u00e9"],
        "overlapping beginnings": [span2 + NEVER, span2[1:]],
        "unicode": [text[first_unicode:max(b1, first_unicode + 1) + 2]],
        "at the very start": [text[:3]],
        "at the very end": [text[-2:]],
        "never written": [NEVER],
    }


def test_streamed_replies_equal_whole_ones_whatever_the_stop_strings(client):
    plain, finish, pieces = _chat(client, stream=True)
    assert finish == "length" and len(pieces) >= 3, pieces  # the borders the stop strings are placed on
    assert _chat(client, stream=False)[:2] == (plain, finish)
    for name, stops in _stop_sets(pieces).items():
        whole = _chat(client, stream=False, stop=stops)
        streamed = _chat(client, stream=True, stop=stops)
        assert streamed[:2] == whole[:2], name
        assert whole[0] == _first_stop(plain, stops), name  # greedy: the same reply, cut at the first stop
        assert whole[1] == ("stop" if whole[0] != plain else "length"), name


def test_streamed_completions_equal_whole_ones(client):
    args = dict(model="tiny", prompt="Order 5 ships on day", max_tokens=40, temperature=0)
    pieces = [c.choices[0].text for c in client.completions.create(stream=True, **args) if c.choices]
    pieces = [p for p in pieces if p]
    for name, stops in _stop_sets(pieces).items():
        whole = client.completions.create(stop=stops, **args).choices[0]
        chunks = [c for c in client.completions.create(stream=True, stop=stops, **args) if c.choices]
        assert "".join(c.choices[0].text for c in chunks) == whole.text, name
        assert chunks[-1].choices[0].finish_reason == whole.finish_reason, name


# ---- request fields ---------------------------------------------------------------------------------------
def test_n_choices(client):
    sampled = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8, temperature=1.0, seed=7, n=3)
    assert [c.index for c in sampled.choices] == [0, 1, 2]
    assert len({c.message.content for c in sampled.choices}) > 1  # each choice its own sample
    single = [client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8, temperature=1.0, seed=7 + i)
              for i in range(3)]
    assert [c.message.content for c in sampled.choices] == [s.choices[0].message.content for s in single]
    assert sampled.usage.completion_tokens == sum(s.usage.completion_tokens for s in single)
    assert sampled.usage.prompt_tokens == single[0].usage.prompt_tokens
    greedy = client.completions.create(model="tiny", prompt="Order 5", max_tokens=6, temperature=0, n=2)
    assert len(greedy.choices) == 2 and greedy.choices[0].text == greedy.choices[1].text


LOOPING = "Order 12 ships"  # a prompt the tiny model answers with one token over and over


def _direct_greedy(endpoint, max_tokens: int, presence: float, frequency: float) -> str:
    """Greedy decoding written out token by token with OpenAI's penalty formula, on the endpoint's own model:
    logit[j] -= count[j] * frequency + (count[j] > 0) * presence, counting only the completion's tokens."""
    import torch

    engine = endpoint[1].acquire("tiny", 0.0)[0]
    try:
        ids = engine.prompt_ids("tiny", prompt=LOOPING)
        made: list[int] = []
        with torch.inference_mode():
            for _ in range(max_tokens):
                logits = engine.model(torch.cat([ids, torch.tensor([made], dtype=ids.dtype)], 1)
                                      if made else ids).logits[0, -1].clone()
                for t in set(made):
                    logits[t] -= made.count(t) * frequency + presence
                made.append(int(logits.argmax()))
                if made[-1] == engine.tokenizer.eos_token_id:
                    break
        return engine.tokenizer.decode(made, skip_special_tokens=True)
    finally:
        endpoint[1].release("tiny")


def test_presence_and_frequency_penalties_follow_openai_formula(client, endpoint):
    def ask(**kw):
        return client.completions.create(model="tiny", prompt=LOOPING, max_tokens=40, temperature=0,
                                         **kw).choices[0].text

    plain = ask()
    assert plain == _direct_greedy(endpoint, 40, 0.0, 0.0)
    replies = {plain}
    for presence, frequency in ((0.0, 1.5), (2.0, 0.0), (0.5, 1.0), (-1.0, 0.0)):
        got = ask(presence_penalty=presence, frequency_penalty=frequency)
        assert got == _direct_greedy(endpoint, 40, presence, frequency), (presence, frequency)
        replies.add(got)
    assert len(replies) >= 3  # the penalties do change these replies


def test_logit_bias_forces_and_bans_tokens(client, endpoint):
    tokenizer = endpoint[1].acquire("tiny", 0.0)[0].tokenizer
    endpoint[1].release("tiny")
    token = tokenizer("Order")["input_ids"][0]
    forced = client.completions.create(model="tiny", prompt="Ticket", max_tokens=5, temperature=0,
                                       logit_bias={str(token): 100})
    assert forced.choices[0].text == tokenizer.decode([token] * 5)
    plain = client.completions.create(model="tiny", prompt="Ticket", max_tokens=5, temperature=0).choices[0].text
    first = tokenizer(plain, add_special_tokens=False)["input_ids"][0]
    banned = client.completions.create(model="tiny", prompt="Ticket", max_tokens=5, temperature=0,
                                       logit_bias={str(first): -100}).choices[0].text
    assert tokenizer(banned, add_special_tokens=False)["input_ids"][0] != first


SCHEMA = {"type": "object", "additionalProperties": False, "required": ["ok", "day", "n"],
          "properties": {"ok": {"type": "boolean"}, "day": {"enum": ["mon", "tue", "wed"]},
                         "n": {"type": "integer", "minimum": 0, "maximum": 9}}}


def test_json_schema_output_is_valid_json_matching_the_schema(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "order", "schema": SCHEMA, "strict": True}}
    plain = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=60, temperature=1.0, seed=1)
    with pytest.raises(json.JSONDecodeError):
        json.loads(plain.choices[0].message.content)  # unconstrained, this model writes no JSON
    reply = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=60, temperature=1.0, seed=1,
                                           n=4, response_format=fmt)
    for choice in reply.choices:
        assert choice.finish_reason == "stop"
        jsonschema.validate(json.loads(choice.message.content), SCHEMA)
    pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=60, temperature=1.0, seed=1, response_format=fmt, stream=True)
        if c.choices]
    assert "".join(pieces) == reply.choices[0].message.content  # the same first sample, streamed


@pytest.mark.slow
def test_json_strings_of_bounded_length_hold_no_raw_control_characters(client):
    schema = {"type": "object", "properties": {"c": {"type": "string", "minLength": 3, "maxLength": 4}},
              "required": ["c"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
    args = dict(model="tiny", messages=HELLO, max_tokens=60, temperature=1.0, seed=2, response_format=fmt)
    reply = client.chat.completions.create(n=4, **args)
    for choice in reply.choices:
        jsonschema.validate(json.loads(choice.message.content), schema)  # strict JSON: controls escaped
    pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **args)
              if c.choices]
    assert "".join(pieces) == reply.choices[0].message.content


def test_json_object_output_is_a_json_object(client):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
              "additionalProperties": False}
    reply = client.chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=200, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
    assert isinstance(json.loads(reply.choices[0].message.content)["a"], int)
    reply = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=200, temperature=0,
                                           response_format={"type": "json_object"})
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].message.content), dict)
    else:  # the token limit cut it: what there is can only be the start of an object
        assert reply.choices[0].finish_reason == "length" and reply.choices[0].message.content.startswith("{")


@pytest.mark.parametrize(("route", "extra", "param", "says"), [
    ("chat", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "nope"}}}]}, "tools",
     "tools[0] ('f'): `parameters` is not a valid JSON schema"),
    ("chat", {"tool_choice": "auto"}, "tool_choice", "`tool_choice` needs `tools`"),
    ("chat", {"functions": [{"name": "f g"}]}, "functions", "functions[0]: the function name 'f g' must be"),
    ("chat", {"function_call": "auto"}, "function_call", "`function_call` needs `functions`"),
    ("chat", {"presence_penalty": 3}, "presence_penalty", "less than or equal to 2"),
    ("chat", {"frequency_penalty": -2.5}, "frequency_penalty", "greater than or equal to -2"),
    ("chat", {"logit_bias": {"Order": 5}}, "logit_bias", "keys are token ids"),
    ("chat", {"logit_bias": {"5": 101}}, "logit_bias", "between -100 and 100"),
    ("chat", {"logit_bias": {"99999": 5}}, "logit_bias", "not in this model's vocabulary"),
    # Keys Python's own digit tests or int() treat loosely: only ASCII digits name a token.
    ("chat", {"logit_bias": {"\u00b2": 5}}, "logit_bias", "keys are token ids"),
    ("chat", {"logit_bias": {"\u0663": 5}}, "logit_bias", "keys are token ids"),
    ("chat", {"logit_bias": {"\uff11": 5}}, "logit_bias", "keys are token ids"),
    ("chat", {"logit_bias": {"+5": 5}}, "logit_bias", "keys are token ids"),
    ("chat", {"logit_bias": {" 5": 5}}, "logit_bias", "keys are token ids"),
    ("chat", {"logit_bias": {"1_0": 5}}, "logit_bias", "keys are token ids"),
    ("chat", {"logit_bias": {"5": "NaN"}}, "logit_bias", "between -100 and 100"),
    ("chat", {"n": 0}, "n", "greater than or equal to 1"),
    ("chat", {"n": 2, "stream": True}, "n", "send `n` = 1 with `stream`"),
    ("chat", {"response_format": {"type": "xml"}}, "response_format.type", "'text', 'json_object' or 'json_schema'"),
    ("chat", {"response_format": {"type": "json_schema"}}, "response_format", "needs `json_schema"),
    ("chat", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nope"}}}},
     "response_format", "JSON schema cannot be used"),
    ("completion", {"echo": True}, "echo", "`echo` is not supported"),
    ("completion", {"best_of": 3}, "best_of", "`best_of` is not supported"),
    ("completion", {"suffix": "end"}, "suffix", "`suffix` is not supported"),
])
def test_fields_not_honoured_are_refused_naming_them(endpoint, route, extra, param, says):
    body = ({"model": "tiny", "messages": HELLO} if route == "chat" else {"model": "tiny", "prompt": "x"}) | extra
    path = "/v1/chat/completions" if route == "chat" else "/v1/completions"
    r = httpx.post(endpoint[0] + path, json={**body, "max_tokens": 4}, headers=AUTH, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and says in error["message"], error
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"


def test_fields_at_their_neutral_values_are_accepted(client):
    reply = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=4, temperature=0,
                                           logprobs=False, tool_choice="none", presence_penalty=0,
                                           frequency_penalty=0, logit_bias={}, n=1, response_format={"type": "text"})
    plain = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=4, temperature=0)
    assert reply.choices[0].message.content == plain.choices[0].message.content


# ---- lathe deploy --speculative ---------------------------------------------------------------------------
def test_deploy_takes_a_speculation_mode(tmp_path):
    from cli.main import app
    from runtimes.serving.endpoints import deploy as endpoints
    from tests.serving_registry import registered_workspace

    ws = registered_workspace(tmp_path)

    def lathe(*args: str):
        return CliRunner().invoke(app, ["--workspace", str(ws.root), *args])

    for bad in ("lookup", "draft:", "prompt-lookup:5"):
        out = lathe("deploy", "tickets-sft", "--name", "spec", "--serverless", "--speculative", bad)
        assert out.exit_code == 2 and "use `prompt-lookup` or `draft:MODEL`" in out.output, out.output
    try:
        out = lathe("deploy", "tickets-sft", "--name", "lookup", "--serverless", "--speculative", "prompt-lookup",
                    "--json")
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["engine"]["speculation"] == {"prompt_lookup_tokens": 10}
        said = lathe("invoke", "lookup", "Order 5 ships on day", "--max-tokens", "4", "--json")
        assert said.exit_code == 0 and json.loads(said.output)["usage"]["completion_tokens"] == 4, said.output
    finally:
        for e in endpoints.list_endpoints(ws):
            endpoints.stop(ws, e.name)

"""The OpenAI-compatible API on a real uvicorn server on loopback, called with the official `openai` client
unchanged: chat, streaming, completions, models; OpenAI-shaped 4xx errors; the API key; traffic capture;
LoRA adapters over one base with LRU eviction; serverless scale-to-zero with the cold start measured."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from catalog.warehouse import connect_reader
from core.workspace import Workspace
from runtimes.monitoring.traffic import ingest, spooled
from runtimes.serving.endpoints.api_keys import key_hash
from runtimes.serving.engines.transformers_engine import ChatMessage, Engine, Sampling
from runtimes.serving.engines.pool import EnginePool
from runtimes.models.refs import ServedModel
from runtimes.serving.endpoints.openai_api import COLD_START_HEADER, EndpointSettings, create_app
from tests.serving_http import serve
from tests.serving_models import tiny_adapter, tiny_base

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "Order 5 ships on day"}]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    base = tiny_base(root / "base")
    return {"base": base, "a1": tiny_adapter(base, root / "a1", seed=1), "a2": tiny_adapter(base, root / "a2", seed=2)}


def _served(models) -> list[ServedModel]:
    b = str(models["base"])
    return [ServedModel("tiny", b, "tiny", None), ServedModel("tickets@1", b, "tiny", str(models["a1"])),
            ServedModel("tickets@2", b, "tiny", str(models["a2"]))]


@pytest.fixture(scope="module")
def capture_ws(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("capture") / "ws")
    ws.create()
    return ws


@pytest.fixture(scope="module")
def endpoint(models, capture_ws):
    """A real-time endpoint serving the base and two adapters over it, loaded at start."""
    pool = EnginePool(_served(models), aliases={"tickets": "tickets@2"})
    pool.load_all()
    app = create_app(pool, EndpointSettings(name="tickets", key_hashes=(key_hash(KEY),), workspace=capture_ws))
    with serve(app) as url:
        yield url, pool


@pytest.fixture()
def client(endpoint):
    return openai.OpenAI(base_url=endpoint[0] + "/v1", api_key=KEY, max_retries=0)


def _direct(models, model_id: str, messages=None, prompt=None, max_new_tokens: int = 12):
    """The reply of a fresh engine that serves only `model_id`: what the endpoint must answer."""
    served = {s.id: s for s in _served(models)}[model_id]
    engine = Engine(served.base)
    engine.register(served)
    ids = engine.prompt_ids(model_id, messages=[ChatMessage(**m) for m in messages] if messages else None,
                            prompt=prompt)
    return engine.generate(model_id, ids, Sampling(max_new_tokens=max_new_tokens, temperature=0.0))


def test_chat_completions_and_models_with_the_openai_client(client, models):
    assert [m.id for m in client.models.list()] == ["tiny", "tickets@1", "tickets@2"]
    assert client.models.retrieve("tickets@1").id == "tickets@1"

    reply = client.chat.completions.create(model="tickets@1", messages=HELLO, max_tokens=12, temperature=0)
    want = _direct(models, "tickets@1", messages=HELLO)
    assert reply.object == "chat.completion" and reply.model == "tickets@1"
    assert reply.choices[0].message.role == "assistant" and reply.choices[0].message.content == want.text
    assert reply.choices[0].finish_reason == want.finish_reason
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (want.prompt_tokens, want.completion_tokens)
    assert reply.usage.total_tokens == want.prompt_tokens + want.completion_tokens

    # the name a version was deployed as picks it too; max_completion_tokens is honoured like max_tokens
    by_alias = client.chat.completions.create(model="tickets", messages=HELLO, max_completion_tokens=12,
                                              temperature=0, user="u1", extra_body={"unknown_field": 1})
    assert by_alias.model == "tickets@2" and by_alias.choices[0].message.content == _direct(
        models, "tickets@2", messages=HELLO).text


def test_streaming_is_server_sent_events_as_openai_sends_them(client, endpoint, models):
    whole = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=12, temperature=0)
    chunks = list(client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=12, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finished == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens

    with httpx.stream("POST", endpoint[0] + "/v1/chat/completions", headers=AUTH, timeout=60,
                      json={"model": "tiny", "messages": HELLO, "max_tokens": 4, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "usage" not in json.loads(events[-2][6:])  # no usage chunk unless stream_options asks for one


def test_completions_whole_and_streamed(client, models):
    want = _direct(models, "tickets@2", prompt="Ticket 4 is about", max_new_tokens=10)
    done = client.completions.create(model="tickets@2", prompt="Ticket 4 is about", max_tokens=10, temperature=0)
    assert done.object == "text_completion" and done.choices[0].text == want.text
    assert done.usage.prompt_tokens == want.prompt_tokens
    streamed = client.completions.create(model="tickets@2", prompt=["Ticket 4 is about"], max_tokens=10,
                                         temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == want.text


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"model": "nope", "messages": HELLO}, 404, "The model `nope` does not exist on this endpoint; it serves: "
     "`tiny`, `tickets@1`, `tickets@2`"),
    ({"model": "tiny"}, 400, "Missing required parameter: 'messages'"),
    ({"model": "tiny", "messages": []}, 400, "'messages'"),
    ({"model": "tiny", "messages": HELLO, "n": 9}, 400, "Invalid value for 'n'"),
    ({"model": "tiny", "messages": HELLO, "n": 3, "stream": True}, 400, "send `n` = 1 with `stream`"),
    ({"model": "tiny", "messages": HELLO, "max_tokens": "ten"}, 400, "Invalid value for 'max_tokens'"),
    ({"model": "tiny", "messages": HELLO, "temperature": 7}, 400, "Invalid value for 'temperature'"),
    ({"model": "tiny", "messages": [{"role": "robot", "content": "hi"}]}, 400, "'messages.0.role'"),
    ({"model": "tiny", "messages": HELLO, "max_tokens": 5000}, 400, "maximum context length is 2048 tokens"),
    ({"model": "tiny", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, 400, "at most 4 stop sequences"),
    ({"model": "tiny", "messages": HELLO, "tools": [{"type": "function"}]}, 400, "tools[0]: needs a `function` object"),
    ({"model": ["tiny"], "messages": HELLO}, 400, "Invalid value for 'model'"),
    ("[1, 2", 400, "not valid JSON"),
    ([1, 2], 400, "must be a JSON object"),
])
def test_bad_bodies_get_openai_shaped_4xx(endpoint, body, status, says):
    url = endpoint[0]
    if isinstance(body, str):
        r = httpx.post(url + "/v1/chat/completions", content=body, timeout=30,
                       headers={**AUTH, "content-type": "application/json"})
    else:
        r = httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert says in error["message"] and set(error) == {"message", "type", "param", "code"}
    assert httpx.get(url + "/health", timeout=10).json()["status"] == "ok"  # the endpoint lives on


def test_the_openai_client_sees_refusals_as_its_own_errors(client):
    with pytest.raises(openai.NotFoundError, match="it serves: `tiny`"):
        client.chat.completions.create(model="tinny", messages=HELLO)
    with pytest.raises(openai.BadRequestError, match="maximum context length is 2048 tokens") as e:
        client.completions.create(model="tiny", prompt="word " * 3000, max_tokens=5)
    assert e.value.code == "context_length_exceeded" and e.value.param == "prompt"
    with pytest.raises(openai.BadRequestError, match="`echo` is not supported"):
        client.completions.create(model="tiny", prompt="x", echo=True)


def test_the_api_key_is_required_on_v1_and_health_says_more_only_with_it(endpoint):
    url = endpoint[0]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        r = httpx.post(url + "/v1/chat/completions", json={"model": "tiny", "messages": HELLO}, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(url + "/v1/models").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert httpx.get(url + "/health").json() == {"status": "ok"}  # up, and nothing about what it serves
    served = ["tiny", "tickets@1", "tickets@2"]
    assert httpx.get(url + "/health", headers=AUTH).json() == {"status": "ok", "endpoint": "tickets",
                                                               "mode": "realtime", "models": served, "loaded": served}


def _captured(ws: Workspace, where: str, expected: int = 1, timeout_s: float = 10.0) -> list[dict]:
    """Rows of the warehouse's `endpoint_traffic` matching `where`, once monitoring's `ingest` has moved them
    there (capture is written after the answer, off the request's path, so it may take a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        ingest(ws)
        with connect_reader(ws) as con:
            cur = con.execute(f"SELECT * FROM endpoint_traffic WHERE {where}")
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_requests_are_captured_with_tokens_latency_and_group(client, capture_ws, endpoint, models):
    raw = client.chat.completions.with_raw_response.create(model="tickets@1", messages=HELLO, max_tokens=6,
                                                          temperature=0, metadata={"group": "emea"}, user="ana")
    reply = raw.parse()
    assert raw.headers["x-request-id"] == reply.id
    [row] = _captured(capture_ws, f"request_id = '{reply.id}'")
    assert row["endpoint"] == "tickets" and row["model"] == "tickets@1"
    assert row["route"] == "chat" and row["status"] == 200 and row["group"] == "emea"
    assert row["prompt"] == "user: Order 5 ships on day" and row["response"] == reply.choices[0].message.content
    assert (row["prompt_tokens"], row["completion_tokens"]) == (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert row["latency_ms"] > 0 and json.loads(row["metadata"])["user"] == "ana"

    streamed = client.completions.with_raw_response.create(model="tiny", prompt="Order", max_tokens=4, stream=True)
    list(streamed.parse())
    [row] = _captured(capture_ws, f"request_id = '{streamed.headers['x-request-id']}'")
    assert row["route"] == "completion" and row["completion_tokens"] == 4 and row["status"] == 200

    refused = httpx.post(endpoint[0] + "/v1/chat/completions", json={"model": "gone", "messages": HELLO}, headers=AUTH)
    assert refused.status_code == 404
    # refusals count in the endpoint's error rate
    assert [r["status"] for r in _captured(capture_ws, "model = 'gone'")] == [404]


def test_capture_rate_zero_records_nothing(models, tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.create()
    pool = EnginePool(_served(models)[:1])
    with serve(create_app(pool, EndpointSettings(name="quiet", workspace=ws, capture_rate=0.0))) as url:
        r = httpx.post(url + "/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 2}, timeout=60)
        assert r.status_code == 200
        time.sleep(0.5)
        assert spooled(ws) == (0, 0)


def test_health_answers_during_a_long_generation(endpoint):
    url = endpoint[0]
    done = threading.Event()
    result: dict = {}

    def long_request() -> None:
        result["r"] = httpx.post(url + "/v1/completions", headers=AUTH, timeout=300,
                                 json={"model": "tiny", "prompt": "Order", "max_tokens": 1500, "temperature": 0})
        done.set()

    worker = threading.Thread(target=long_request)
    worker.start()
    answered_meanwhile = 0
    while not done.is_set():
        if httpx.get(url + "/health", timeout=60).status_code == 200 and not done.is_set():
            answered_meanwhile += 1
        time.sleep(0.05)
    worker.join()
    assert result["r"].status_code == 200 and result["r"].json()["usage"]["completion_tokens"] > 100
    assert answered_meanwhile >= 1


def test_an_abandoned_stream_stops_generating_and_frees_the_engine(endpoint):
    url, pool = endpoint
    engine, _ = pool.acquire("tiny")
    pool.release("tiny")
    body = {"model": "tiny", "prompt": "Order", "max_tokens": 1500, "temperature": 0}
    whole = httpx.post(url + "/v1/completions", headers=AUTH, timeout=600, json=body).json()["usage"]["completion_tokens"]
    assert whole > 300  # what the stream below would generate if nobody stopped it

    before = engine.tokens_generated
    with httpx.stream("POST", url + "/v1/completions", headers=AUTH, timeout=600, json={**body, "stream": True}) as r:
        pieces = 0
        for line in r.iter_lines():
            pieces += line.startswith("data: {")
            if pieces == 3:
                break  # the client leaves mid-stream: the connection closes with the block
    # Wait while the engine is held and still decoding; it must come free long before the whole answer is out.
    last, moved = engine.tokens_generated, time.monotonic()
    while engine.busy:
        if engine.tokens_generated != last:
            last, moved = engine.tokens_generated, time.monotonic()
        assert time.monotonic() - moved < 120, "the engine is held without decoding"
        time.sleep(0.01)
    abandoned = engine.tokens_generated - before
    assert 3 <= abandoned < whole / 2, (abandoned, whole)
    # The engine answers the next request, and nothing more was generated for the abandoned one meanwhile.
    again = httpx.post(url + "/v1/completions", headers=AUTH, timeout=600, json={**body, "max_tokens": 5})
    assert again.status_code == 200
    assert engine.tokens_generated - before == abandoned + again.json()["usage"]["completion_tokens"]


def test_adapters_beyond_the_cap_are_evicted_and_still_answer_right(models):
    """Cap 1 with two adapters: each request loads its adapter (the other leaves), and every reply equals what
    a fresh engine serving only that version answers, one client at a time or many at once."""
    pool = EnginePool(_served(models), engine_options={"max_adapters": 1})
    want = {m: _direct(models, m, messages=HELLO).text for m in ("tiny", "tickets@1", "tickets@2")}
    assert want["tickets@1"] != want["tickets@2"] != want["tiny"]
    with serve(create_app(pool, EndpointSettings(name="lru"))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        for model in ("tickets@1", "tickets@2", "tickets@1", "tiny", "tickets@2", "tickets@2", "tickets@1"):
            reply = client.chat.completions.create(model=model, messages=HELLO, max_tokens=12, temperature=0)
            assert reply.choices[0].message.content == want[model], model
            engine, _ = pool.acquire(model)
            pool.release(model)
            if model != "tiny":
                assert engine.loaded_adapters() == [model]  # the cap holds: the other adapter was evicted

        def ask(i: int) -> bool:  # many clients at once, whole and streamed: adapters switch between requests only
            model = ("tiny", "tickets@1", "tickets@2")[i % 3]
            if i % 2:
                chunks = client.chat.completions.create(model=model, messages=HELLO, max_tokens=12, temperature=0,
                                                        stream=True)
                return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == want[model]
            reply = client.chat.completions.create(model=model, messages=HELLO, max_tokens=12, temperature=0)
            return reply.choices[0].message.content == want[model]

        with ThreadPoolExecutor(8) as pool_of_clients:
            assert all(pool_of_clients.map(ask, range(24)))


def test_serverless_scales_to_zero_and_restarts_with_the_cold_start_measured(models):
    events: list[tuple[str, dict]] = []
    pool = EnginePool(_served(models), serverless=True, idle_timeout_s=0.3,
                      on_event=lambda kind, message, data: events.append((kind, data)))
    app = create_app(pool, EndpointSettings(name="sls", key_hashes=(key_hash(KEY),), mode="serverless"))
    with serve(app) as url:
        assert httpx.get(url + "/health", headers=AUTH).json()["loaded"] == []  # nothing loaded before the first request
        client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)

        first = client.chat.completions.with_raw_response.create(model="tickets@1", messages=HELLO, max_tokens=4)
        assert float(first.headers[COLD_START_HEADER]) > 0
        warm = client.chat.completions.with_raw_response.create(model="tickets@2", messages=HELLO, max_tokens=4)
        assert COLD_START_HEADER not in warm.headers  # same base, same engine: no new start

        deadline = time.monotonic() + 30
        while httpx.get(url + "/health", headers=AUTH).json()["loaded"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(url + "/health", headers=AUTH).json()["loaded"] == []  # scaled to zero; the process answers on

        with httpx.stream("POST", url + "/v1/completions", headers=AUTH, timeout=60,  # a client that goes away
                          json={"model": "tiny", "prompt": "Order", "max_tokens": 1000, "stream": True}) as r:
            next(r.iter_lines())
        deadline = time.monotonic() + 60
        while httpx.get(url + "/health", headers=AUTH).json()["loaded"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(url + "/health", headers=AUTH).json()["loaded"] == []  # its stream let go of the engine

        streamed = client.chat.completions.with_raw_response.create(model="tiny", messages=HELLO, max_tokens=4,
                                                                   temperature=0, stream=True)
        assert float(streamed.headers[COLD_START_HEADER]) > 0  # the header waits for the first token
        text = "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
        assert text == _direct(models, "tiny", messages=HELLO, max_new_tokens=4).text
    kinds = [k for k, _ in events]
    assert kinds.count("cold_start") == 3 and "unloaded" in kinds
    colds = [d for k, d in events if k == "cold_start"]
    assert [c["model"] for c in colds] == ["tickets@1", "tiny", "tiny"]
    assert all(c["cold_start_ms"] >= c["load_ms"] > 0 for c in colds)

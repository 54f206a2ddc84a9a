"""Hostile requests to a real endpoint on loopback: out-of-range numbers (a seed past 64 bits, negative or
astronomical token counts, n=10**9), wrong types, bodies that are not JSON objects, and bodies of 20 MB, declared
or chunked. Each gets an OpenAI-shaped 4xx (never a 500) and the endpoint answers normally afterwards;
`/health` says only that it is up to a caller without the key."""
from __future__ import annotations

import httpx
import pytest

from runtimes.serving.endpoints.api_keys import key_hash
from runtimes.serving.engines.pool import EnginePool
from runtimes.models.refs import ServedModel
from runtimes.serving.endpoints.openai_api import MAX_BODY_BYTES, EndpointSettings, create_app
from tests.serving_http import serve
from tests.serving_models import tiny_base

KEY = "hostile-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "Order 5 ships on day"}]
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    base = tiny_base(tmp_path_factory.mktemp("hostile") / "base")
    pool = EnginePool([ServedModel("tiny", str(base), "tiny", None)])
    pool.load_all()
    with serve(create_app(pool, EndpointSettings(name="hostile", key_hashes=(key_hash(KEY),)))) as u:
        yield u


def _chat(**extra):
    return {"model": "tiny", "messages": HELLO, "max_tokens": 2, **extra}


CHAT_BODIES = [
    # (body, param the error names)
    (_chat(seed=2**70), "seed"),
    (_chat(seed=-(2**70)), "seed"),
    (_chat(seed=2**64), "seed"),
    (_chat(seed=1.5), "seed"),
    (_chat(seed="forty-two"), "seed"),
    (_chat(max_tokens=-1), "max_tokens"),
    (_chat(max_tokens=0), "max_tokens"),
    (_chat(max_tokens=10**30), "max_tokens"),
    (_chat(max_completion_tokens=2**64), "max_completion_tokens"),
    (_chat(n=10**9), "n"),
    (_chat(n=-1), "n"),
    (_chat(temperature="hot"), "temperature"),
    (_chat(temperature=-0.5), "temperature"),
    (_chat(top_p=0), "top_p"),
    (_chat(stop=123), "stop"),
    (_chat(stop=["a"] * 50), "stop"),
    (_chat(metadata={"group": 5}), "metadata.group"),
    (_chat(stream_options="yes please"), "stream_options"),
    ({"model": 5, "messages": HELLO}, "model"),
    ({"model": "tiny", "messages": "hello"}, "messages"),
    ({"model": "tiny", "messages": [{"role": "user", "content": {"nested": True}}]}, "messages.0.content.str"),
    ({"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages.0.content"),
    ({"model": "tiny", "messages": [{"content": "no role"}]}, "messages.0.role"),
]


@pytest.mark.parametrize(("body", "param"), CHAT_BODIES, ids=[str(i) for i in range(len(CHAT_BODIES))])
def test_out_of_range_and_mistyped_fields_get_a_400_naming_the_field(url, body, param):
    r = httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == ERROR_KEYS and error["type"] == "invalid_request_error"
    assert error["param"] is not None and error["param"].startswith(param.split(".")[0]), error
    assert "\n" not in error["message"]


@pytest.mark.parametrize("body", [
    {"model": "tiny", "prompt": "x", "seed": 2**70},
    {"model": "tiny", "prompt": "x", "max_tokens": -5},
    {"model": "tiny", "prompt": ["a"] * 1000},
    {"model": "tiny", "prompt": 12},
    {"model": "tiny", "prompt": "x", "n": 10**9},
])
def test_completions_refuse_the_same_with_400(url, body):
    r = httpx.post(url + "/v1/completions", json=body, headers=AUTH, timeout=60)
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]) == ERROR_KEYS


@pytest.mark.parametrize(("raw", "content_type"), [
    ("hello", "application/json"),
    ("", "application/json"),
    ("null", "application/json"),
    ("42", "application/json"),
    ('"a string"', "application/json"),
    ('{"model": "tiny", "messages": ', "application/json"),
    ('{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "application/json"),
    ('{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": Infinity}', "application/json"),
    ("[" * 100_000 + "]" * 100_000, "application/json"),
    ('{"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}', "text/plain"),
    (b"\xff\xfe\x00garbage", "application/json"),
])
def test_bodies_that_are_not_a_json_object_get_a_400(url, raw, content_type):
    r = httpx.post(url + "/v1/chat/completions", content=raw, timeout=60,
                   headers={**AUTH, "content-type": content_type})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == ERROR_KEYS and error["type"] == "invalid_request_error"


def test_a_20_mb_body_is_refused_with_413_declared_or_chunked(url):
    big = b'{"model": "tiny", "messages": [{"role": "user", "content": "' + b"x" * (20 * 2**20) + b'"}]}'
    r = httpx.post(url + "/v1/chat/completions", content=big, timeout=60,
                   headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def chunks():  # no Content-Length: the size shows only as it arrives
        for i in range(0, len(big), 2**20):
            yield big[i:i + 2**20]

    r = httpx.post(url + "/v1/completions", content=chunks(), timeout=60,
                   headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413 and set(r.json()["error"]) == ERROR_KEYS


def test_a_lying_content_length_is_refused_without_waiting_for_the_body(url):
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {10**12}\r\n\r\n{{}}".encode())
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"code":"request_too_large"' in answer


def test_a_body_just_under_the_cap_is_read_and_answered(url):
    body = _chat(messages=[{"role": "user", "content": "hi"}], user="u" * (MAX_BODY_BYTES // 2))
    r = httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text


def test_unauthenticated_callers_learn_nothing_from_health_or_an_oversized_body(url):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        assert httpx.get(url + "/health", headers=headers).json() == {"status": "ok"}
        r = httpx.post(url + "/v1/chat/completions", content=b"x" * (MAX_BODY_BYTES + 1), headers=headers)
        assert r.status_code == 401  # the key is checked before the body is looked at
    full = httpx.get(url + "/health", headers=AUTH).json()
    assert full["models"] == ["tiny"] and full["endpoint"] == "hostile"


def test_the_endpoint_still_answers_after_the_volley(url):
    r = httpx.post(url + "/v1/chat/completions", json=_chat(seed=2**63 - 1), headers=AUTH, timeout=60)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["role"] == "assistant"
    r = httpx.post(url + "/v1/chat/completions", json=_chat(seed=-(2**63)), headers=AUTH, timeout=60)
    assert r.status_code == 200

"""Endpoints as real processes on loopback: deploy checks first and refuses clearly (unknown or pending
versions, adapters that do not fit, taken names and ports), leaving nothing behind; a deployed endpoint answers
the `openai` client with its key; a killed process is reported failed, never running; serverless endpoints
scale to zero and record every cold start; stop, start and delete."""
from __future__ import annotations

import os
import signal
import socket

import openai
import psutil
import pytest

from core.errors import UserError
from runtimes.serving.endpoints import deploy as endpoints
from runtimes.serving.endpoints.client import invoke
from runtimes.serving.endpoints.store import EndpointStore
from tests.serving_registry import registered_workspace
from tests.waiting import wait_for

HELLO = [{"role": "user", "content": "Order 5 ships on day"}]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = registered_workspace(tmp_path_factory.mktemp("serving"))
    yield ws
    for e in EndpointStore(ws).list():  # no endpoint process outlives the tests
        endpoints.stop(ws, e.name)


def _nothing_left(ws) -> None:
    assert EndpointStore(ws).list() == []
    assert not (ws.root / "runs" / "endpoints").exists() or not any((ws.root / "runs" / "endpoints").iterdir())


@pytest.mark.parametrize(("models", "extra", "says"), [
    (["tickets-sft@9"], {}, "`tickets-sft` has no version 9; its versions: 1, 2"),
    (["tickets-sf"], {}, "no model `tickets-sf`; did you mean `tickets-sft`"),
    (["tickets-sft@2"], {}, "`tickets-sft` version 2 is pending, not approved"),
    (["wide-sft"], {}, "cannot deploy `wide-sft`: the adapter at"),
    (["tickets-sft", "tickets-sft@1"], {}, "which this deploy already serves"),
    (["tickets-sft"], {"name": "batch"}, "`batch` is reserved"),
    (["tickets-sft"], {"name": "no spaces please"}, "deploy: `name`"),
    (["tickets-sft"], {"mode": "sometimes"}, "deploy: `mode`"),
    (["tickets-sft"], {"idle_timeout": 0}, "deploy: `idle_timeout`"),
    ([], {}, "deploy: `models`"),
    (["tickets-sft"], {"quantize": "int3"}, "`int3`"),
])
def test_deploy_refuses_clearly_before_starting_anything(ws, models, extra, says):
    with pytest.raises(UserError) as e:
        endpoints.deploy(ws, models, **extra)
    assert says in str(e.value)
    _nothing_left(ws)


def test_an_adapter_that_does_not_fit_names_the_module_and_shapes(ws):
    with pytest.raises(UserError) as e:
        endpoints.deploy(ws, ["wide-sft@1"])
    assert "does not fit the base model" in str(e.value) and "shape" in str(e.value)


def test_a_port_in_use_is_refused(ws):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(UserError, match=f"port {taken.getsockname()[1]} on 127.0.0.1 is not free"):
            endpoints.deploy(ws, ["tickets-sft"], port=taken.getsockname()[1])
    _nothing_left(ws)


@pytest.mark.slow
def test_a_start_that_fails_leaves_nothing_behind(ws):
    with pytest.raises(UserError, match="endpoint `broken-sft` did not start: "):
        endpoints.deploy(ws, ["broken-sft"])
    _nothing_left(ws)


@pytest.mark.slow
def test_deploy_call_kill_restart_stop_delete(ws):
    d = endpoints.deploy(ws, ["tickets-sft", "replies-sft@1"], name="tickets")
    e = d.endpoint
    assert d.created and d.api_key and d.api_key.startswith("lathe-")
    assert e.status == "running" and e.host == "127.0.0.1" and e.url == f"http://127.0.0.1:{e.port}/v1"
    assert e.model_ids == ["tickets-sft@1", "replies-sft@1"]
    stored = EndpointStore(ws).get("tickets")
    assert d.api_key not in str(stored.__dict__)  # only the hash is stored

    client = openai.OpenAI(base_url=e.url, api_key=d.api_key, max_retries=0)
    assert [m.id for m in client.models.list()] == ["tickets-sft@1", "replies-sft@1"]
    one = client.chat.completions.create(model="tickets-sft@1", messages=HELLO, max_tokens=8, temperature=0)
    two = client.chat.completions.create(model="replies-sft", messages=HELLO, max_tokens=8, temperature=0)
    assert one.choices[0].message.content != two.choices[0].message.content and two.model == "replies-sft@1"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=e.url, api_key="lathe-wrong", max_retries=0).models.list()
    assert invoke(ws, "tickets", "Order 5 ships on day", max_tokens=8).text == one.choices[0].message.content

    again = endpoints.deploy(ws, ["tickets-sft", "replies-sft@1"], name="tickets")
    assert not again.created and again.api_key is None and again.endpoint.pid == e.pid  # its own: left as is
    with pytest.raises(UserError, match="an endpoint named `tickets` already exists"):
        endpoints.deploy(ws, ["replies-sft"], name="tickets")

    os.kill(e.pid, signal.SIGKILL)
    psutil.Process(e.pid).wait(10)
    dead = endpoints.get_endpoint(ws, "tickets")
    assert dead.status == "failed" and f"pid {e.pid}" in dead.error
    assert [x.status for x in endpoints.list_endpoints(ws)] == ["failed"]
    with pytest.raises(UserError, match="endpoint `tickets` is failed"):
        invoke(ws, "tickets", "hello")

    restarted = endpoints.start(ws, "tickets")
    assert restarted.status == "running" and restarted.pid != e.pid
    client = openai.OpenAI(base_url=restarted.url, api_key=d.api_key, max_retries=0)  # the key still works
    assert client.chat.completions.create(model="tickets-sft@1", messages=HELLO, max_tokens=8,
                                          temperature=0).choices[0].message.content == one.choices[0].message.content

    stopped = endpoints.stop(ws, "tickets")
    assert stopped.status == "stopped" and stopped.pid is None
    assert not endpoints.is_endpoint_alive(restarted.pid, "tickets")
    kinds = [ev.message for ev in EndpointStore(ws).events("tickets") if ev.kind == "status"]
    assert kinds[-1] == "stopped"  # the process recorded its own clean stop
    endpoints.delete(ws, "tickets")
    _nothing_left(ws)


@pytest.mark.slow
def test_serverless_scales_to_zero_and_records_every_cold_start(ws):
    d = endpoints.deploy(ws, ["tickets-sft"], name="sls", mode="serverless", idle_timeout=1)
    assert d.endpoint.status == "idle"  # up and answering /health, nothing loaded
    first = invoke(ws, "sls", "Order 5 ships on day", max_tokens=4)
    assert first.cold_start_ms is not None and endpoints.get_endpoint(ws, "sls").status == "running"
    assert invoke(ws, "sls", "again", max_tokens=4).cold_start_ms is None  # warm

    wait_for(lambda: endpoints.get_endpoint(ws, "sls").status == "idle", what="the endpoint to scale to zero")
    e = endpoints.get_endpoint(ws, "sls")
    assert e.status == "idle" and e.pid is not None and psutil.pid_exists(e.pid)  # scaled to zero, still up

    pieces: list[str] = []
    second = invoke(ws, "sls", "Order 5 ships on day", max_tokens=4, on_piece=pieces.append)
    assert second.cold_start_ms is not None and "".join(pieces) == second.text == first.text
    e = endpoints.get_endpoint(ws, "sls")
    assert [c["model"] for c in e.cold_starts] == ["tickets-sft@1", "tickets-sft@1"]
    assert all(c["cold_start_ms"] >= c["load_ms"] > 0 for c in e.cold_starts)
    kinds = [ev.kind for ev in EndpointStore(ws).events("sls")]
    assert kinds.count("cold_start") == 2 and kinds.count("unloaded") >= 1
    endpoints.delete(ws, "sls")
    _nothing_left(ws)

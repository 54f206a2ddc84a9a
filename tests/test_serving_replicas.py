"""Replicas behind one stable address: a restarted endpoint keeps its port, URL and key; a replica killed outright
is replaced while the URL keeps answering; concurrent load adds replicas up to the maximum and idleness removes
them down to the minimum, each change recorded; serverless refuses requests beyond its concurrency with 429 and
scales to zero holding no weights; adapter loads are events and the authenticated status call lists it all; and
`lathe endpoints stop` stops an endpoint that another program started (and does not reap) in one line."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import openai
import psutil
import pytest
from typer.testing import CliRunner

from cli.main import app
from core.errors import UserError
from runtimes.serving.endpoints import deploy as endpoints
from runtimes.serving.endpoints.client import lathe_status
from runtimes.serving.endpoints.scaling import Load, Scaling, decide
from runtimes.serving.endpoints.store import EndpointStore
from tests.serving_registry import registered_workspace
from tests.waiting import cpu_seconds, wait_for

HELLO = [{"role": "user", "content": "Order 5 ships on day"}]
ROOT = Path(__file__).resolve().parents[1]
WIDE = {"COLUMNS": "200"}  # tables unwrapped, as a wide terminal shows them


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = registered_workspace(tmp_path_factory.mktemp("replicas"))
    yield ws
    for e in EndpointStore(ws).list():  # no endpoint process outlives the tests
        endpoints.stop(ws, e.name)


def _events(ws, name: str, kind: str) -> list:
    return EndpointStore(ws).events(name, kinds=(kind,))


def _progress(ws, name: str):
    """What changes while an endpoint works toward a state: its events and its processes' CPU time."""
    e = EndpointStore(ws).get(name)
    return len(EndpointStore(ws).events(name)), cpu_seconds([e.pid])


def _answer(url: str, key: str, max_tokens: int = 8) -> str:
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
    reply = client.chat.completions.create(model="tickets-sft@1", messages=HELLO, max_tokens=max_tokens,
                                           temperature=0)
    return reply.choices[0].message.content


# ---- the scaling rule ------------------------------------------------------------------------------------
RULE = Scaling(min_replicas=1, max_replicas=3, scale_up_queue=2, target_p95_ms=500, scale_down_idle_s=30)


@pytest.mark.parametrize(("replicas", "starting", "in_flight", "p95", "idle", "change"), [
    (1, 0, 3, None, 0, +1),   # more than 2 in flight on the one replica
    (1, 0, 2, None, 0, 0),    # exactly 2 each: enough
    (2, 0, 5, None, 0, +1),   # 5 on 2 replicas
    (2, 1, 9, None, 0, 0),    # one is starting: its capacity is on the way
    (3, 0, 50, None, 0, 0),   # at the maximum
    (1, 0, 1, 900.0, 0, +1),  # slow: p95 above the target
    (1, 0, 1, 400.0, 0, 0),   # fast enough
    (2, 0, 0, None, 30, -1),  # idle for the whole period
    (2, 0, 0, None, 29, 0),   # not idle long enough
    (2, 0, 1, None, 99, 0),   # a request in flight: not idle
    (1, 0, 0, None, 999, 0),  # at the minimum
    (0, 0, 0, None, 0, +1),   # below the minimum
])
def test_the_scaling_rule_moves_one_replica_at_a_time_within_the_range(replicas, starting, in_flight, p95, idle,
                                                                       change):
    d = decide(RULE, replicas=replicas, starting=starting, load=Load(in_flight, p95), idle_for_s=idle)
    assert d.change == change and (bool(d.reason) == bool(change))


@pytest.mark.parametrize(("given", "says"), [
    ({"min_replicas": 3, "max_replicas": 2}, "max_replicas (2) is below min_replicas (3)"),
    ({"min_replicas": 0}, "scaling: `min_replicas`"),
    ({"max_replicas": 99}, "scaling: `max_replicas`"),
    ({"max_concurrency": 0}, "scaling: `max_concurrency`"),
    ({"replicas": 2}, "scaling: `replicas`"),
])
def test_bad_scaling_settings_are_refused_before_anything_starts(ws, given, says):
    with pytest.raises(UserError, match=says.replace("(", r"\(").replace(")", r"\)")):
        endpoints.deploy(ws, ["tickets-sft"], name="bad-scaling", scaling=given)
    assert EndpointStore(ws).find("bad-scaling") is None


def test_the_cli_refuses_a_replica_range_upside_down_in_one_line(ws):
    out = CliRunner().invoke(app, ["--workspace", str(ws.root), "deploy", "tickets-sft", "--name", "upside-down",
                                   "--min-replicas", "3", "--max-replicas", "2"])
    assert out.exit_code != 0 and "max_replicas (2) is below min_replicas (3)" in out.output
    assert "Traceback" not in out.output and EndpointStore(ws).find("upside-down") is None


# ---- processes ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_restarted_endpoint_keeps_its_port_url_and_key(ws):
    d = endpoints.deploy(ws, ["tickets-sft"], name="kept")
    first = d.endpoint
    said = _answer(first.url, d.api_key)

    endpoints.stop(ws, "kept")
    again = endpoints.start(ws, "kept")
    assert (again.port, again.url) == (first.port, first.url) and again.pid != first.pid
    assert _answer(again.url, d.api_key) == said  # the same key, the same URL

    os.kill(again.pid, signal.SIGKILL)  # the supervisor dies outright: its replicas go with it
    psutil.Process(again.pid).wait(30)
    assert endpoints.get_endpoint(ws, "kept").status == "failed"
    third = endpoints.start(ws, "kept")
    assert third.url == first.url and _answer(third.url, d.api_key) == said
    endpoints.stop(ws, "kept")


@pytest.mark.slow
def test_a_killed_replica_is_replaced_and_the_url_keeps_answering(ws):
    d = endpoints.deploy(ws, ["tickets-sft"], name="healing")
    e = d.endpoint
    said = _answer(e.url, d.api_key)
    (replica,) = wait_for(lambda: lathe_status(ws, "healing")["replicas"], what="the replica's figures")
    os.kill(replica["pid"], signal.SIGKILL)

    (replaced,) = wait_for(lambda: _events(ws, "healing", "replica_replaced"), progress=lambda: _progress(ws, "healing"),
                           what="the dead replica to be replaced")
    assert replaced.data["dead"] == replica["pid"] and replaced.data["exitcode"] == -signal.SIGKILL
    wait_for(lambda: any(ev.data["replica"] == replaced.data["replica"] for ev in _events(ws, "healing", "replica_ready")),
             progress=lambda: _progress(ws, "healing"), what="the new replica to be ready")
    now = endpoints.get_endpoint(ws, "healing")
    assert now.status == "running" and now.url == e.url and now.pid == e.pid  # the supervisor and address stay
    assert _answer(e.url, d.api_key) == said
    assert [r["pid"] for r in lathe_status(ws, "healing")["replicas"]] == [replaced.data["replica"]]
    shown = CliRunner().invoke(app, ["--workspace", str(ws.root), "endpoints", "status", "healing"], env=WIDE)
    assert shown.exit_code == 0 and "endpoint `healing` running: 1 replica(s) (min 1, max 1)" in shown.output
    assert f"replica {replica['pid']} died (exit code -9)" in shown.output
    shown = CliRunner().invoke(app, ["--workspace", str(ws.root), "endpoints", "show", "healing"], env=WIDE)
    assert shown.exit_code == 0 and "1 running; min 1, max 1" in shown.output
    endpoints.delete(ws, "healing")


@pytest.mark.slow
def test_concurrent_load_adds_replicas_and_idleness_removes_them(ws):
    d = endpoints.deploy(ws, ["tickets-sft"], name="elastic",
                         scaling={"min_replicas": 1, "max_replicas": 2, "scale_up_queue": 1, "scale_down_idle_s": 1})
    url, key = d.endpoint.url, d.api_key
    loaded = threading.Event()

    def client() -> None:
        while not loaded.is_set():
            _answer(url, key, max_tokens=24)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        two = wait_for(lambda: [ev for ev in _events(ws, "elastic", "replica_ready") if ev.data["ready"] == 2],
                       progress=lambda: _progress(ws, "elastic"), what="a second replica under load")
    finally:
        loaded.set()
        for t in threads:
            t.join()
    (up,) = _events(ws, "elastic", "scaled_up")
    assert up.data["replicas"] == 2 and "requests in flight on 1 replica(s)" in up.data["reason"]
    assert up.seq < two[0].seq

    (down,) = wait_for(lambda: _events(ws, "elastic", "scaled_down"), progress=lambda: _progress(ws, "elastic"),
                       what="scaling back down when idle")
    assert down.data["replicas"] == 1 and "no request for" in down.data["reason"]
    wait_for(lambda: len(lathe_status(ws, "elastic")["replicas"]) == 1, what="one replica left")
    assert _answer(url, key)  # the same address throughout
    assert len(_events(ws, "elastic", "scaled_up")) == 1  # never above the maximum
    endpoints.delete(ws, "elastic")


@pytest.mark.slow
def test_serverless_refuses_beyond_its_concurrency_and_unloads_every_weight(ws):
    d = endpoints.deploy(ws, ["tickets-sft"], name="sls-limit", mode="serverless", idle_timeout=1,
                         scaling={"max_concurrency": 1})
    url, key = d.endpoint.url, d.api_key
    headers = {"authorization": f"Bearer {key}"}
    assert httpx.get(f"{url}/lathe/status", timeout=30).status_code == 401  # the status call needs the key

    assert _answer(url, key)  # loads the model and its adapter
    wait_for(lambda: _events(ws, "sls-limit", "adapter_loaded"), what="the adapter's load event")
    with _slow_client(url, key):  # a request whose body is still arriving holds the one place
        wait_for(lambda: httpx.get(f"{url}/lathe/status", headers=headers, timeout=30).json()["queue_depth"] == 1,
                 what="the slow request to take the place")
        body = {"model": "tickets-sft@1", "messages": HELLO, "max_tokens": 4}
        refused = httpx.post(f"{url}/chat/completions", json=body, headers=headers, timeout=60)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        # The key is checked before the place: a caller without it learns nothing of the load and takes nothing.
        stranger = httpx.post(f"{url}/chat/completions", json=body, timeout=60)
        assert stranger.status_code == 401
        st = httpx.get(f"{url}/lathe/status", headers=headers, timeout=30).json()
        assert st["this_replica"]["in_flight"] == st["queue_depth"] == 1 and st["this_replica"]["refused"] == 1
        assert st["scaling"]["max_concurrency"] == 1
    wait_for(lambda: endpoints.get_endpoint(ws, "sls-limit").status == "idle", what="scaling to zero")
    st = wait_for(lambda: (s := httpx.get(f"{url}/lathe/status", headers=headers, timeout=30).json())
                  ["this_replica"]["adapters"] == {} and s, what="the adapters to be dropped")
    assert st["this_replica"]["loaded"] == []
    weights = sum(f.stat().st_size for f in (ws.root / "models" / "base" / "tiny-qwen3").glob("*.safetensors"))
    assert st["this_replica"]["tensor_bytes"] * 100 < weights  # no weights held, at most a few scraps
    wait_for(lambda: _events(ws, "sls-limit", "adapter_unloaded"), what="the adapter's unload event")
    kinds = [ev["kind"] for ev in st["events"]]
    assert {"loaded", "unloaded"} <= set(kinds)
    assert _answer(url, key)  # loads again on demand
    endpoints.delete(ws, "sls-limit")


@contextlib.contextmanager
def _slow_client(url: str, key: str):
    """A chat request whose headers are sent and whose body never finishes while the block runs."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
        yield


@pytest.mark.slow
def test_stop_ends_an_endpoint_another_program_started_and_does_not_reap(ws):
    endpoints.deploy(ws, ["tickets-sft"], name="adopted")
    endpoints.stop(ws, "adopted")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    starter = ("import sys, time\nfrom pathlib import Path\nfrom core.workspace import Workspace\n"
               "from runtimes.serving.endpoints.deploy import start\n"
               "start(Workspace(Path(sys.argv[1])), 'adopted'); print('up', flush=True); time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", starter, str(ws.root)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "up"
        e = endpoints.get_endpoint(ws, "adopted")
        assert psutil.Process(e.pid).ppid() == parent.pid  # its parent is the other program, which never reaps
        out = subprocess.run([sys.executable, "-m", "cli.main", "--workspace", str(ws.root), "endpoints", "stop",
                              "adopted"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "endpoint `adopted` stopped" and "Traceback" not in out.stderr
        assert not endpoints.is_endpoint_alive(e.pid, "adopted")
        assert endpoints.get_endpoint(ws, "adopted").status == "stopped"
    finally:
        parent.kill()
        parent.wait()
    endpoints.delete(ws, "adopted")

"""The async inference queue on a real SQLite file with real worker processes and a tiny local model: submit returns
at once and refuses bad input clearly; the database itself refuses a second or changed answer; workers SIGKILLed
half-way and restarted leave every request answered exactly once, captured as traffic once, and a webhook delivered
to a real loopback HTTP server after retries."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import UserError
from core.state_db import transaction
from runtimes.monitoring.traffic import spool_path
from runtimes.serving.queue import store as aq
from runtimes.serving.queue.store import AsyncQueue
from tests.serving_models import tiny_base
from tests.waiting import cpu_seconds, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from core.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("async") / "ws")
    ws.create()
    tiny_base(ws.root / "models" / "base" / "tiny")
    return ws


@pytest.fixture
def hooks():
    """A loopback HTTP server that answers 500 to the first two POSTs of each request id, then 200."""
    seen: list[tuple[str, int, dict, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            tries = sum(1 for s in seen if s[0] == body["id"])
            code = 500 if tries < 2 else 200
            seen.append((body["id"], code, dict(self.headers), body))
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    server.shutdown()


def _workers(ws, *extra: str) -> list[str]:
    return [sys.executable, "-m", "runtimes.serving.queue.worker", str(ws.root), "--model", "tiny", "--workers", "2",
            "--webhook-backoff", "0.2", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_submit_returns_an_id_at_once_and_refuses_bad_input(ws, tmp_path):
    from runtimes.serving.endpoints.store import EndpointStore

    rid = aq.submit(ws, "tiny", {"messages": [{"role": "user", "content": "Where is order 5?"}], "max_tokens": 3})
    st = aq.status(ws, rid)
    assert (st.status, st.endpoint, st.model, st.attempts, st.payload_path) == ("queued", "async", "tiny", 0, None)
    with pytest.raises(UserError, match=f"request {rid} has no result: it is queued: no worker has taken it yet"):
        aq.result(ws, rid)
    assert aq.cancel(ws, rid).status == "cancelled"
    with pytest.raises(UserError, match="is already cancelled; nothing to cancel"):
        aq.cancel(ws, rid)

    big = {"prompt": "x" * (aq.INLINE_LIMIT_BYTES + 10), "max_tokens": 1}
    with pytest.raises(UserError, match=r"is 64 KiB, over the 64 KiB inline limit: pass it by file reference"):
        aq.submit(ws, "tiny", big)
    f = tmp_path / "big.json"
    f.write_text(json.dumps(big), encoding="utf-8")
    with pytest.raises(UserError, match="maximum context length is 2048 tokens"):  # 65,546 tokens of prompt
        aq.submit(ws, "tiny", payload_file=f)
    f.write_text(json.dumps({"prompt": "hello", "max_tokens": 1, "metadata": {"notes": "x" * aq.INLINE_LIMIT_BYTES}}),
                 encoding="utf-8")  # as large, its prompt short
    by_file = aq.status(ws, aq.submit(ws, "tiny", payload_file=f))
    kept = Path(by_file.payload_path)
    assert kept.is_relative_to(ws.root) and kept.read_text(encoding="utf-8") == f.read_text(encoding="utf-8")
    aq.cancel(ws, by_file.id)

    EndpointStore(ws).create(name="tickets", models=[{"ref": "tiny", "id": "tiny", "base": "tiny", "base_ref": "tiny",
                                                      "adapter": None}], mode="realtime", idle_timeout=300.0,
                             host="127.0.0.1", fixed_port=None, key_hash="-", local_key_hash=None, engine={},
                             capture_rate=1.0)
    via_endpoint = aq.status(ws, aq.submit(ws, "tickets", {"prompt": "hello"}))
    assert (via_endpoint.endpoint, via_endpoint.model) == ("tickets", "tiny")
    aq.cancel(ws, via_endpoint.id)

    bad = [("tiny", {"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "exactly one of `messages`"),
           ("tiny", {"prompt": "a", "temprature": 0}, r"`temprature`: Extra inputs are not permitted"),
           ("tiny", {"messages": []}, r"`messages` is empty"),
           ("tiny", {"messages": [{"role": "robot", "content": "b"}]}, r"`messages.0.role`: Input should be"),
           ("tiny", None, "no payload"),
           ("tiy", {"prompt": "a"}, r"no model `tiy`; did you mean `tiny`"),
           ("tickets", {"prompt": "a", "model": "other"}, r"no model on endpoint `tickets` `other`")]
    for target, payload, message in bad:
        with pytest.raises(UserError, match=message):
            aq.submit(ws, target, payload)
    with pytest.raises(UserError, match="payload file .*nowhere.json does not exist"):
        aq.submit(ws, "tiny", payload_file=tmp_path / "nowhere.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="bad.json is not JSON"):
        aq.submit(ws, "tiny", payload_file=tmp_path / "bad.json")
    with pytest.raises(UserError, match="webhook `ftp://x` is not an http"):
        aq.submit(ws, "tiny", {"prompt": "a"}, webhook="ftp://x")
    with pytest.raises(UserError, match="no async request `async-nope`"):
        aq.status(ws, "async-nope")
    assert aq.summary(ws)["requests"] == {"tiny": {"cancelled": 3}}  # nothing half-written by the refusals


def test_the_database_refuses_a_second_or_changed_answer(ws):
    ids = aq.submit_many(ws, "tiny", [{"prompt": f"q{i}", "max_tokens": 1} for i in range(4)])
    q = AsyncQueue(ws)
    answer = {"text": "a", "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 1, "latency_ms": 1.0}
    try:
        # A lease runs out (its worker stalled): another worker takes the request; only the new holder's answer counts.
        (slow,) = q.claim(["tiny"], "elsewhere:1:0", limit=1, lease_s=0.0)
        time.sleep(0.01)
        (fresh,) = q.claim(["tiny"], "elsewhere:2:0", limit=1, lease_s=60.0)
        assert fresh.id == slow.id == ids[0] and fresh.attempts == 2
        assert q.complete(fresh, "elsewhere:2:0", **answer) is True
        assert q.complete(slow, "elsewhere:1:0", **{**answer, "text": "late"}) is False
        assert q.complete(fresh, "elsewhere:2:0", **{**answer, "text": "again"}) is False
        assert aq.result(ws, ids[0]).text == "a"

        with pytest.raises(sqlite3.DatabaseError, match="written once"):
            _write(q, "UPDATE results SET text = 'changed' WHERE request_id = ?", (ids[0],))
        with pytest.raises(sqlite3.DatabaseError, match="never deleted"):
            _write(q, "DELETE FROM results WHERE request_id = ?", (ids[0],))
        with pytest.raises(sqlite3.DatabaseError, match="only for a request being answered|UNIQUE"):
            _write(q, "INSERT INTO results VALUES (?, 'b', 'stop', 1, 1, 1.0, 'x', 0)", (ids[0],))
        with pytest.raises(sqlite3.DatabaseError, match="never changes status"):
            _write(q, "UPDATE requests SET status = 'queued' WHERE id = ?", (ids[0],))
        with pytest.raises(sqlite3.DatabaseError, match="done only with its result"):
            _write(q, "UPDATE requests SET status = 'done' WHERE id = ?", (ids[1],))

        # Cancelled while being answered: the answer is dropped. Released unanswered: back in the queue.
        (doomed,) = q.claim(["tiny"], "elsewhere:3:0", limit=1, lease_s=60.0)
        aq.cancel(ws, doomed.id)
        assert q.complete(doomed, "elsewhere:3:0", **answer) is False and aq.status(ws, doomed.id).status == "cancelled"
        (back,) = q.claim(["tiny"], "elsewhere:3:0", limit=1, lease_s=60.0)
        q.release(back.token, [back.id])
        assert (aq.status(ws, back.id).status, aq.status(ws, back.id).attempts) == ("queued", 0)

        # A request whose worker keeps dying fails after MAX_ATTEMPTS rather than kill every worker.
        for i in range(aq.MAX_ATTEMPTS):
            assert [c.id for c in q.claim(["tiny"], f"elsewhere:9{i}:0", limit=1, lease_s=0.0)] == [back.id]
            time.sleep(0.01)
        assert q.claim(["tiny"], "elsewhere:99:0", limit=1, lease_s=0.0)[0].id == ids[3]
        assert aq.status(ws, back.id).status == "failed" and "stopped 5 times" in aq.status(ws, back.id).error
        with transaction(q.path) as db:
            assert db.execute("SELECT count(*) FROM results WHERE request_id IN (?, ?, ?, ?)", ids).fetchone()[0] == 1
    finally:
        for rid in ids:
            if aq.status(ws, rid).status in ("queued", "running"):
                aq.cancel(ws, rid)


def _write(q: AsyncQueue, sql: str, args: tuple) -> None:
    """A write by hand, past the queue's API (the database's own rules still apply)."""
    with transaction(q.path, immediate=True) as db:
        db.execute(sql, args)


@pytest.mark.slow
def test_workers_killed_half_way_and_restarted_answer_every_request_exactly_once(ws, hooks, tmp_path):
    url, seen = hooks
    n = 60
    ids = aq.submit_many(ws, "tiny", [{"prompt": f"Where is order {i}?", "max_tokens": 2, "temperature": 0,
                                       "group": f"g{i % 2}"} for i in range(n - 2)])
    hooked = aq.submit(ws, "tiny", {"messages": [{"role": "user", "content": "Refund ticket 7?"}], "max_tokens": 2},
                       webhook=url)
    f = tmp_path / "one.json"
    f.write_text(json.dumps({"prompt": "By file reference", "max_tokens": 2}), encoding="utf-8")
    ids += [hooked, aq.submit(ws, "tiny", payload_file=f)]
    queue = AsyncQueue(ws).path

    def done() -> int:
        with sqlite3.connect(queue, timeout=30) as db:
            return db.execute("SELECT count(*) FROM results WHERE request_id IN (SELECT value FROM json_each(?))",
                              (json.dumps(ids),)).fetchone()[0]

    pool = subprocess.Popen(_workers(ws), cwd=ROOT, env=_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: done() >= 15, progress=lambda: (done(), cpu_seconds([pool.pid])), what="15 answers")
        lock = sqlite3.connect(queue, timeout=30, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # every worker now waits at its next write, answers in hand
        at_kill = done()
        os.killpg(pool.pid, signal.SIGKILL)
        pool.wait(timeout=30)
        lock.execute("ROLLBACK")
        lock.close()
    finally:
        if pool.poll() is None:
            os.killpg(pool.pid, signal.SIGKILL)
    assert 15 <= at_kill < n

    again = subprocess.run(_workers(ws, "--exit-when-idle"), cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]

    assert {aq.status(ws, i).status for i in ids} == {"done"}
    with sqlite3.connect(queue) as db:
        per_id = dict(db.execute("SELECT request_id, count(*) FROM results WHERE request_id IN "
                                 "(SELECT value FROM json_each(?)) GROUP BY 1", (json.dumps(ids),)).fetchall())
        completed = db.execute("SELECT sum(completed) FROM workers").fetchone()[0]
    assert len(per_id) == n and set(per_id.values()) == {1}  # none lost, none answered twice
    assert completed == n  # the workers' own count of accepted answers, across both pools
    with sqlite3.connect(spool_path(ws)) as db:
        captured = db.execute("SELECT count(*), count(DISTINCT request_id), min(route) FROM traffic WHERE request_id "
                              "IN (SELECT value FROM json_each(?))", (json.dumps(ids),)).fetchone()
        groups = dict(db.execute("SELECT grp, count(*) FROM traffic WHERE route = 'async' GROUP BY 1").fetchall())
    assert captured == (n, n, "async") and groups["g0"] == groups["g1"] == (n - 2) // 2

    st = aq.status(ws, hooked)
    assert st.webhook["status"] == "delivered" and st.webhook["last_status"] == 200
    codes = [code for rid, code, _, _ in seen if rid == hooked]
    assert codes[:3] == [500, 500, 200]
    tries = AsyncQueue(ws).deliveries(hooked)
    assert [t["status_code"] for t in tries][:3] == [500, 500, 200]
    _, _, headers, body = next(s for s in seen if s[0] == hooked and s[1] == 200)
    assert headers["Idempotency-Key"] == hooked and body["result"]["text"] == aq.result(ws, hooked).text
    assert aq.status(ws, ids[-1]).payload_path and aq.result(ws, ids[-1]).completion_tokens >= 1


def test_cli_submits_and_reports_clearly(ws, tmp_path):
    from cli.main import app

    runner = CliRunner()

    def lathe(*args: str):
        return runner.invoke(app, ["-w", str(ws.root), "async", *args])

    out = lathe("submit", "tiny", "Where is order 9?", "--max-tokens", "2")
    assert out.exit_code == 0, out.output
    rid = out.output.strip().splitlines()[-1]
    assert rid.startswith("async-") and "queued" in lathe("status", rid).output
    missing = lathe("result", rid)
    assert missing.exit_code == 2 and "has no result: it is queued" in missing.output
    assert "cancelled" in lathe("cancel", rid).output
    assert "give the request as TEXT or as --file PATH" in lathe("submit", "tiny").output
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"prompt": "from a file", "max_tokens": 1}), encoding="utf-8")
    from_file = lathe("submit", "tiny", "--file", str(body), "--json")
    assert json.loads(from_file.output.strip().splitlines()[-1])["id"].startswith("async-")
    assert "async requests" in lathe("status").output and "workers" in lathe("workers").output
    assert "no model `tiy`" in lathe("submit", "tiy", "hello").output
    aq.cancel(ws, json.loads(from_file.output.strip().splitlines()[-1])["id"])


def test_tools_submit_and_report(ws):
    from tools.registry import ToolRegistry
    from tools.risk import Risk

    registry = ToolRegistry.discover()
    assert registry.risk("submit_async") == Risk.compute and registry.risk("async_status") == Risk.read
    tools = registry.bind(ws)

    def call(name: str, /, **args):
        return tools[name].run_validated(tools[name].schema().model_validate(args))

    done_before = call("async_status").data["requests"].get("tiny", {}).get("done", 0)
    sent = call("submit_async", target="tiny", message="Where is order 3?", max_tokens=2)
    rid = sent.data["id"]
    # From the chat nobody runs a pool: with no worker alive, one starts and stops once the queue is empty.
    assert f"queued request {rid}" in sent.text and "No worker was running: one started" in sent.text
    assert sent.data["worker_started"]
    deadline = time.monotonic() + 120
    while aq.status(ws, rid).status != "done" and time.monotonic() < deadline:
        time.sleep(0.5)
    answered = call("async_status", request_id=rid).text
    assert answered.startswith(f"request {rid} for `tiny` is done: ")
    assert call("async_status").data["requests"]["tiny"]["done"] == done_before + 1


def test_a_prompt_beyond_the_context_length_is_refused_at_submit_and_failed_by_a_worker(ws):
    from runtimes.serving.queue.worker import serve

    long = {"prompt": "Where is order 5? " * 700, "max_tokens": 4}
    before = aq.summary(ws)["requests"]
    with pytest.raises(UserError, match=r"maximum context length is 2048 tokens\. However, you requested \d+ tokens "
                                        r"\(\d+ in the prompt, 4 in the completion\)"):
        aq.submit(ws, "tiny", long)
    with pytest.raises(UserError, match=r"async request 1: .* \(\d+ in the messages, 64 in the completion\)"):
        aq.submit_many(ws, "tiny", [{"prompt": "short"},
                                    {"messages": [{"role": "user", "content": long["prompt"]}]}])
    assert aq.summary(ws)["requests"] == before  # nothing queued, not even the short one
    fits = aq.submit(ws, "tiny", {"prompt": "Where is order 5? " * 20, "max_tokens": 4})
    aq.cancel(ws, fits)

    # One queued without the check at submit (as before it existed) fails in the worker, with the same words.
    rid = AsyncQueue(ws).submit_many("async", "tiny", [(aq.AsyncRequest(**long), None)], None)[0]
    serve(ws, ["tiny"], exit_when_idle=True, poll_s=0.05)
    st = aq.status(ws, rid)
    assert st.status == "failed" and "maximum context length is 2048 tokens" in (st.error or ""), st

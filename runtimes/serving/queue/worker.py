"""Async inference workers: `python -m runtimes.serving.queue.worker WS --model M [--model M2] --workers N`. Each
worker process loads the model(s) into an `Engine`, claims queued requests under a lease, answers them, completes
each in one transaction, captures it as traffic (route `async`) and posts webhooks; N > 1 runs a small supervisor
that starts N such processes and restarts one that dies.

A worker killed at any moment loses nothing: its leases expire (or, on this machine, are seen dead at the next
start) and the requests are answered by another; the queue refuses a second answer. SIGTERM or Ctrl-C stops
gracefully: the request in hand is finished and the rest of the claim goes back to the queue.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.offline import OFFLINE_ENV, apply_offline_env
from core.workspace import Workspace
from runtimes.serving.queue.store import AsyncQueue, Claim, worker_id
from runtimes.models.refs import ServedModel

_ROOT = Path(__file__).resolve().parents[3]


class _Stop:
    """Set by SIGTERM / SIGINT, or when the supervisor that started this worker is gone."""
    requested = False


def resolve_models(ws: Workspace, refs: Sequence[str]) -> list[ServedModel]:
    """The models a worker serves: registered versions, base models, or every model of a named endpoint; all over
    one base, since a worker holds one base model in memory."""
    from runtimes.serving.endpoints.store import EndpointStore
    from runtimes.models.refs import resolve_served

    if not refs:
        raise UserError("name at least one model (or endpoint) for the workers to serve: --model NAME")
    store = EndpointStore(ws)
    served: list[ServedModel] = []
    for ref in refs:
        endpoint = store.find(ref)
        if endpoint is not None:
            served += [ServedModel(id=m["id"], base=m["base"], base_ref=m.get("base_ref") or m["base"],
                                   adapter=m.get("adapter")) for m in endpoint.models]
        else:
            served.append(resolve_served(ws, ref))
    bases = sorted({s.base for s in served})
    if len(bases) > 1:
        raise UserError(f"one worker holds one base model, but these models use {len(bases)} ({', '.join(bases)}): "
                        "start a worker pool per base model")
    unique = {s.id: s for s in served}
    return list(unique.values())


def serve(ws: Workspace, refs: Sequence[str], *, name: str | None = None, claim: int = 4, lease_s: float = 60.0,
          poll_s: float = 0.2, exit_when_idle: bool = False, webhook_backoff_s: float = 1.0,
          parent: int | None = None) -> int:
    """One worker's loop, until stopped (or, with `exit_when_idle`, until its models have nothing left to do);
    returns the number of requests it answered."""
    from runtimes.serving.queue.webhooks import deliver_due
    from runtimes.serving.engines.transformers_engine import Engine

    served = resolve_models(ws, refs)
    models = [s.id for s in served]
    engine = Engine(served[0].base)
    for s in served:
        engine.register(s)
    me = worker_id()
    queue = AsyncQueue(ws)
    queue.register_worker(me, name or f"worker-{os.getpid()}", models)
    queue.reclaim_dead()
    _capture(ws, queue)  # what a worker killed earlier answered but did not capture
    lease = _Lease(ws, lease_s)
    answered = 0
    try:
        while not _stopping(parent):
            deliver_due(queue, backoff_s=webhook_backoff_s)
            claims = queue.claim(models, me, limit=claim, lease_s=lease_s)
            if not claims:
                _capture(ws, queue)
                if exit_when_idle and queue.reclaim_dead() == 0 and queue.pending(models) == 0:
                    break
                time.sleep(poll_s)
                continue
            lease.hold(claims[0].token)
            for i, c in enumerate(claims):
                if _stopping(parent):
                    queue.release(c.token, [x.id for x in claims[i:]])
                    break
                answered += _answer(engine, queue, me, c)
            lease.hold(None)
            _capture(ws, queue, me)  # its own answers; the idle sweep catches what a dead worker left
    finally:
        lease.stop()
        _capture(ws, queue)
        queue.worker_stopped(me)
    return answered


def _answer(engine: Any, queue: AsyncQueue, me: str, c: Claim) -> int:
    from runtimes.serving.engines.context_window import check_fits
    from runtimes.serving.engines.pool import context_length
    from runtimes.serving.engines.transformers_engine import ChatMessage

    try:
        if c.request.messages is not None:
            ids = engine.prompt_ids(c.model, messages=[ChatMessage(role=m.role, content=m.content)
                                                       for m in c.request.messages])
        else:
            ids = engine.prompt_ids(c.model, prompt=c.request.prompt)
        # Checked at submit too; a request queued before that check, or for another base, is failed here.
        check_fits(context_length(engine), int(ids.shape[1]), c.request.max_tokens,
                   "messages" if c.request.messages is not None else "prompt")
        gen = engine.generate(c.model, ids, c.request.sampling())
    except UserError as e:
        queue.fail(c, str(e), 400)
        return 0
    except Exception as e:  # a model error: that request fails with the reason, the worker goes on
        queue.fail(c, f"{type(e).__name__}: {e}", 500)
        return 0
    return int(queue.complete(c, me, text=gen.text, finish_reason=gen.finish_reason, prompt_tokens=gen.prompt_tokens,
                              completion_tokens=gen.completion_tokens, latency_ms=gen.latency_ms))


def _capture(ws: Workspace, queue: AsyncQueue, worker: str | None = None) -> None:
    """Finished requests (those `worker` finished, or all) into the traffic capture (idempotent on the request
    id), then marked captured."""
    from runtimes.monitoring.traffic import TrafficRecord, record, render_chat
    from runtimes.serving.queue.store import AsyncRequest

    while rows := queue.uncaptured(worker=worker):
        records = []
        for r in rows:
            text = r["payload"] if r["payload"] is not None else Path(r["payload_path"]).read_text(encoding="utf-8")
            request = AsyncRequest.model_validate_json(text)
            prompt = (render_chat([m.model_dump() for m in request.messages]) if request.messages is not None
                      else request.prompt or "")
            done = r["status"] == "done"
            waited = ((r["started_at"] or r["submitted_at"]) - r["submitted_at"]) * 1000
            records.append(TrafficRecord(
                request_id=r["id"], endpoint=r["endpoint"], model=r["model"],
                ts=dt.datetime.fromtimestamp(r["submitted_at"], dt.timezone.utc), route="async", prompt=prompt,
                response=r["text"] if done else (r["error"] or ""), prompt_tokens=r["prompt_tokens"] or 0,
                completion_tokens=r["completion_tokens"] or 0, latency_ms=r["latency_ms"] or 0.0,
                status=200 if done else int(r["error_status"] or 500), group=request.group,
                metadata={**request.metadata, "queue_wait_ms": round(max(waited, 0.0), 1)}))
        record(ws, records)
        queue.mark_captured([r["id"] for r in rows])


class _Lease:
    """Renews the lease of the claim in hand from a thread of its own, so a long generation keeps it."""

    def __init__(self, ws: Workspace, lease_s: float) -> None:
        self.ws, self.lease_s = ws, lease_s
        self.token: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def hold(self, token: str | None) -> None:
        self.token = token

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        queue = AsyncQueue(self.ws)
        while not self._done.wait(self.lease_s / 3):
            token = self.token
            if token is not None:
                queue.renew(token, self.lease_s)


def _stopping(parent: int | None) -> bool:
    if parent is not None and os.getppid() != parent:
        _Stop.requested = True  # the supervisor is gone: stop rather than run on unsupervised
    return _Stop.requested


def start_detached(ws: Workspace, model: str) -> int:
    """One worker for `model` in a process of its own session that stops once nothing is left to answer (for
    front-ends that queue a request and cannot keep a worker pool running); its output goes to the workspace's
    `runs/async/`. Returns its pid."""
    log = ws.root / "runs" / "async" / "workers.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **OFFLINE_ENV,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "runtimes.serving.queue.worker", str(ws.root), "--model", model,
                                 "--exit-when-idle"], cwd=_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc.pid


# ---- the process ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtimes.serving.queue.worker",
                                     description="Answer queued async requests for one or more models.")
    parser.add_argument("workspace")
    parser.add_argument("--model", action="append", required=True, help="a model or endpoint to serve (repeatable)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--claim", type=int, default=4, help="requests taken per claim")
    parser.add_argument("--lease", type=float, default=60.0, help="seconds a claim is held without renewal")
    parser.add_argument("--exit-when-idle", action="store_true", help="stop once nothing is left for these models")
    parser.add_argument("--webhook-backoff", type=float, default=1.0, help="seconds before the first webhook retry")
    parser.add_argument("--name", default=None)
    parser.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    apply_offline_env()
    ws = Workspace.resolve(args.workspace).require()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: setattr(_Stop, "requested", True))
    try:
        if args.workers == 1:
            n = serve(ws, args.model, name=args.name, claim=args.claim, lease_s=args.lease,
                      exit_when_idle=args.exit_when_idle, webhook_backoff_s=args.webhook_backoff,
                      parent=args.parent)
            print(f"{args.name or 'worker'}: answered {n} requests", flush=True)
            return 0
        return supervise(ws, args, args.workers)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2


def supervise(ws: Workspace, args: argparse.Namespace, n: int) -> int:
    """Run `n` worker processes; restart one that dies while the pool runs; stop them all on SIGTERM."""
    def start(i: int) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "runtimes.serving.queue.worker", str(ws.root), "--workers", "1",
               "--claim", str(args.claim), "--lease", str(args.lease), "--webhook-backoff", str(args.webhook_backoff),
               "--name", f"{args.name or 'worker'}-{i}", "--parent", str(os.getpid())]
        cmd += [x for m in args.model for x in ("--model", m)]
        cmd += ["--exit-when-idle"] if args.exit_when_idle else []
        env = {**os.environ, **OFFLINE_ENV,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        # N processes each using every core would fight over them: each gets its share unless the user chose.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
        return subprocess.Popen(cmd, cwd=_ROOT, env=env, stdin=subprocess.DEVNULL)

    procs = {i: start(i) for i in range(n)}
    failed = 0
    while procs:
        time.sleep(0.2)
        for i, p in list(procs.items()):
            code = p.poll()
            if code is None:
                continue
            del procs[i]
            if _Stop.requested or (args.exit_when_idle and code == 0):
                continue
            if code == 2:  # a user error (a bad model, no workspace) would repeat on every start: the pool ends
                _Stop.requested = True
                failed = 2
                continue
            print(f"worker {i} ended with {code}; starting it again", file=sys.stderr, flush=True)
            procs[i] = start(i)
        if _Stop.requested:
            for p in procs.values():
                if p.poll() is None:
                    p.terminate()
            for p in procs.values():
                p.wait()
            return failed
    return failed


if __name__ == "__main__":
    sys.exit(main())
